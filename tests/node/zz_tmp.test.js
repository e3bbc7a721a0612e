import { test, after } from 'node:test';
import { startStack } from './lib/fixtures.js';
test('hang then timeout', { timeout: 3000 }, async () => { const s = await startStack(); await new Promise(()=>{}); });
