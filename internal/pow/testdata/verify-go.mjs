// Reads {hmacKey, cases: [{payload}]} on stdin (challenges made and solved
// by the Go package) and prints altcha-lib's verdict for each as a JSON
// array of booleans. Used by TestGoChallengesVerifyWithAltchaLib.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../../web/package.json', import.meta.url));
const { verifySolution } = require('altcha-lib/v1');

let input = '';
for await (const chunk of process.stdin) input += chunk;
const { hmacKey, cases } = JSON.parse(input);
const out = [];
for (const c of cases) out.push(await verifySolution(c.payload, hmacKey));
process.stdout.write(JSON.stringify(out) + '\n');
