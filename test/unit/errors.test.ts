import { describe, expect, it } from 'vitest';
import { GrainTypeNotRegisteredError, InvalidMessageForStateError, RedgrainError, RemoteGrainError, UnknownMethodError } from 'redgrain';
import { errorFromData, errorToData } from '../../src/errors/error-converter.ts';

const roundTrip = (error: unknown) => errorFromData(JSON.parse(JSON.stringify(errorToData(error))));

describe('error converter', () => {
  it('rebuilds framework errors as their own classes', () => {
    const back = roundTrip(new InvalidMessageForStateError('Campaign', 'CANCELLED', 'review'));
    expect(back).toBeInstanceOf(InvalidMessageForStateError);
    expect(back).toMatchObject({ state: 'CANCELLED', messageName: 'review', code: 'INVALID_MESSAGE_FOR_STATE' });
    expect(roundTrip(new UnknownMethodError('T', 'm'))).toBeInstanceOf(UnknownMethodError);
    expect(roundTrip(new GrainTypeNotRegisteredError('T'))).toMatchObject({ grainType: 'T' });
  });

  it('keeps name, message and code of errors it does not know', () => {
    class QuotaError extends RedgrainError {
      constructor() {
        super('QUOTA', 'over quota');
      }
    }
    const back = roundTrip(new QuotaError());
    expect(back).toBeInstanceOf(RemoteGrainError);
    expect(back).toMatchObject({ name: 'QuotaError', message: 'over quota', code: 'QUOTA' });
    expect((back as RemoteGrainError).remoteStack).toContain('QuotaError');
    expect(roundTrip('a string')).toMatchObject({ name: 'Error', message: 'a string', code: 'HANDLER_ERROR' });
  });
});
