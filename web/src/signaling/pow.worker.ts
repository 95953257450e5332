// The proof-of-work worker: solves one ALTCHA challenge with altcha-lib's
// solver (WebCrypto SHA-256) off the main thread and posts back the payload
// the server expects: base64 of the solution's JSON.
import { solveChallenge } from 'altcha-lib/v1';

import type { PowChallenge } from './protocol';

self.onmessage = async (ev: MessageEvent<PowChallenge>) => {
  const c = ev.data;
  try {
    const solution = await solveChallenge(c.challenge, c.salt, c.algorithm, c.maxnumber).promise;
    if (!solution) throw new Error('no number up to maxnumber solves the challenge');
    const payload = btoa(
      JSON.stringify({
        algorithm: c.algorithm,
        challenge: c.challenge,
        number: solution.number,
        salt: c.salt,
        signature: c.signature,
      }),
    );
    self.postMessage({ payload, took: solution.took });
  } catch (err) {
    self.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
};
