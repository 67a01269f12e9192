import { findHaproxy } from '../../adapters/routers/haproxy-sandbox.js';
import { missing } from './availability.js';

export const haproxyMissing = await missing('HAProxy (haproxy)', () => findHaproxy());
