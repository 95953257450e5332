// Writes altcha-vectors.json: ALTCHA v1 challenges and solution payloads made
// by altcha-lib (the reference implementation), each with altcha-lib's own
// verdict, for the Go verifier's tests (pow_test.go).
//
// Run from the repository root after `npm ci` in web/ (altcha-lib is a
// dependency of the web client):
//   node internal/pow/testdata/gen-vectors.mjs > internal/pow/testdata/altcha-vectors.json
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../../web/package.json', import.meta.url));
const { createChallenge, solveChallenge, verifySolution } = require('altcha-lib/v1');

const hmacKey = 'stranger-test-vector-key-0123456789';
const now = Math.floor(Date.now() / 1000);
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64');

async function solved(opts) {
  const c = await createChallenge({ hmacKey, maxnumber: 5000, ...opts });
  const s = await solveChallenge(c.challenge, c.salt, c.algorithm, c.maxnumber).promise;
  return { challenge: c, solution: { algorithm: c.algorithm, challenge: c.challenge, number: s.number, salt: c.salt, signature: c.signature } };
}

const fresh = () => new Date((now + 600) * 1000);
const cases = [];
async function add(name, want, sol, challenge) {
  const payload = typeof sol === 'string' ? sol : b64(sol);
  const altcha = await verifySolution(payload, hmacKey);
  cases.push({ name, want, altchaVerifies: altcha, challenge, payload });
}

for (let i = 0; i < 3; i++) {
  const v = await solved({ expires: fresh() });
  await add(`valid ${i}`, 'ok', v.solution, v.challenge);
}
{
  const v = await solved({ expires: fresh(), maxnumber: 100 });
  await add('valid, small maxnumber', 'ok', v.solution, v.challenge);
}
{
  const v = await solved({ expires: fresh() });
  await add('wrong number', 'wrong', { ...v.solution, number: v.solution.number + 1 }, v.challenge);
}
{
  const v = await solved({ expires: fresh() });
  const sig = v.solution.signature;
  const flipped = (sig[0] === '0' ? '1' : '0') + sig.slice(1);
  await add('wrong signature', 'wrong', { ...v.solution, signature: flipped }, v.challenge);
}
{
  const other = await createChallenge({ hmacKey: 'another-key-another-key-0123', maxnumber: 5000, expires: fresh() });
  const s = await solveChallenge(other.challenge, other.salt, other.algorithm, other.maxnumber).promise;
  await add('signed with another key', 'wrong', { algorithm: other.algorithm, challenge: other.challenge, number: s.number, salt: other.salt, signature: other.signature }, other);
}
{
  const v = await solved({ expires: new Date((now - 60) * 1000) });
  await add('expired', 'expired', v.solution, v.challenge);
}
{
  const v = await solved({ expires: fresh() });
  const salt = v.solution.salt;
  const tampered = (salt[0] === 'a' ? 'b' : 'a') + salt.slice(1);
  await add('tampered salt', 'wrong', { ...v.solution, salt: tampered }, v.challenge);
}
{
  // A later expiry in the salt: the challenge no longer matches.
  const v = await solved({ expires: fresh() });
  const later = v.solution.salt.replace(/expires=\d+/, `expires=${now + 86400 * 365}`);
  await add('extended expiry', 'wrong', { ...v.solution, salt: later }, v.challenge);
}
{
  // A digit of the number moved into the salt: the trailing "&" stops it.
  const v = await solved({ expires: fresh(), number: 1234 });
  await add('number spliced into salt', 'wrong', { ...v.solution, salt: v.solution.salt + '12', number: 34 }, v.challenge);
}
{
  const v = await solved({ expires: fresh() });
  await add('not base64', 'malformed', '!!' + b64(v.solution), v.challenge);
}

process.stdout.write(JSON.stringify({ generator: 'altcha-lib ' + JSON.parse(readFileSync(new URL('../../../web/node_modules/altcha-lib/package.json', import.meta.url))).version, hmacKey, now, cases }, null, 2) + '\n');
