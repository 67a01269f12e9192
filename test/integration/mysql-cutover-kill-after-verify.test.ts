import { killMariadbAtEveryStep } from '../helpers/kill-suite.js';

// The rest of the journal steps (see mysql-cutover-kill-resume.test.ts for the first ones).
await killMariadbAtEveryStep(
  'MariaDB cutover SIGKILLed at each step from the point of no return',
  [
    { step: 'point-of-no-return', then: 'resume' },
    { step: 'repoint', then: 'resume' },
    { step: 'lift', then: 'resume' },
    { step: 'cleanup', then: 'resume' },
    { step: 'report', then: 'resume' },
  ],
  '1. SIGKILL at each journal step, point of no return … report (MariaDB)',
);
