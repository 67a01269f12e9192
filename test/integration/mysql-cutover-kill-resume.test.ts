import { killMariadbAtEveryStep } from '../helpers/kill-suite.js';

// Every journal step of a MariaDB cutover through HAProxy, split over two files so two workers share them.
await killMariadbAtEveryStep(
  'MariaDB cutover SIGKILLed at each step up to verify',
  [
    { step: 'preflight', then: 'resume' },
    { step: 'hold', then: 'rollback' },
    { step: 'fence', then: 'rollback' },
    { step: 'catch-up', then: 'resume' },
    { step: 'sequences', then: 'resume' },
    { step: 'verify', then: 'rollback' },
  ],
  '1. SIGKILL at each journal step, preflight … verify (MariaDB)',
);
