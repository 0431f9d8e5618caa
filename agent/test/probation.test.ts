import { describe, expect, it } from 'vitest';
import { errorRateSpiked } from '../src/probation.ts';

describe('the probation error-rate guard', () => {
  it('trips on a model that fails every request', () => {
    expect(errorRateSpiked(25, 25, 0)).toBe(true);
    expect(errorRateSpiked(20, 20, 0)).toBe(true);
  });

  it('does not trip on an unlucky start of a steady 10% error rate', () => {
    // 6 in 20 is the 1% tail of Binomial(20, 0.1); the raw rate (30%) would have tripped.
    expect(errorRateSpiked(6, 20, 0)).toBe(false);
    expect(errorRateSpiked(9, 40, 0)).toBe(false);
  });

  it('needs the new rate to be clearly above twice the old one', () => {
    expect(errorRateSpiked(150, 300, 0.3)).toBe(false); // 50% against 2 × 30%
    expect(errorRateSpiked(280, 300, 0.3)).toBe(true);
  });

  it('trips on a sustained 50% error rate once the sample is large enough', () => {
    expect(errorRateSpiked(10, 20, 0)).toBe(false);
    expect(errorRateSpiked(100, 200, 0)).toBe(true);
  });

  it('holds over many simulated 10%-error devices', () => {
    // 20 devices × 30 checks with growing samples: the guard must stay quiet for every one.
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let tripped = 0;
    for (let device = 0; device < 200; device++) {
      let errors = 0;
      for (let request = 1; request <= 600; request++) {
        if (random() < 0.1) errors++;
        if (request >= 20 && request % 20 === 0 && errorRateSpiked(errors, request, 0)) tripped++;
      }
    }
    expect(tripped).toBe(0);
  });
});
