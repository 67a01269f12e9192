import { killAtEveryStep } from '../helpers/kill-suite.js';

killAtEveryStep(
  'PostgreSQL cutover SIGKILLed before its point of no return',
  [
    { step: 'preflight', then: 'resume' },
    { step: 'hold', then: 'resume' },
    { step: 'fence', then: 'rollback' },
    { step: 'catch-up', then: 'resume' },
    { step: 'sequences', then: 'rollback' },
    { step: 'verify', then: 'resume' },
    { step: 'point-of-no-return', then: 'resume' },
  ],
  { scenario: '1. SIGKILL at each journal step before the point of no return (PG)' },
);
