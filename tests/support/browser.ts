import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Where browser tests save their screenshots (ignored by git). */
export const ARTIFACTS = path.join(__dirname, '..', '..', 'test-artifacts');

/**
 * Debian's Chromium, headless. The flags keep it from reaching for Google's services, which this
 * machine's closed network refuses at every start.
 */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Launches the browser and makes sure the screenshot folder exists. */
export function launchChromium(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}
