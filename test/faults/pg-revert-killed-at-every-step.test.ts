import { killRevertAtEveryStep } from '../helpers/kill-suite.js';

await killRevertAtEveryStep('postgres');
