import { RosterError } from '@roster/core';

/**
 * A registration could not be decided: a member did not answer within the
 * registry's timeout, or the registry itself was restarting. Never a `yes`
 * on silence, never a `no` that is not one.
 */
export class RegistryUnavailableError extends RosterError {
  readonly code = 'registry_unavailable';
  override readonly name = 'RegistryUnavailableError';
}
