import { killAtEveryStep } from '../helpers/kill-suite.js';

killAtEveryStep(
  'PostgreSQL cutover SIGKILLed after its point of no return',
  [
    { step: 'repoint', then: 'resume' },
    { step: 'lift', then: 'resume' },
    { step: 'cleanup', then: 'resume' },
    // Starting the reverse path: a resumed run starts it from the slot made at the switch.
    { step: 'reverse', then: 'resume' },
    { step: 'report', then: 'resume' },
  ],
  { scenario: '1. SIGKILL at each journal step after the point of no return (PG)' },
);
