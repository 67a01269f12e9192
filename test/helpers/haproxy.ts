import { findHaproxy } from '../../src/sandbox/haproxy-sandbox.js';
import { missing } from './availability.js';

export const haproxyMissing = await missing('HAProxy (haproxy)', () => findHaproxy());
