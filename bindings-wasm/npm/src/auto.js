// Entry for the copy-paste snippet: defines `window.reproline` and replays what the page queued
// in it. Never reads or replaces `window.reproio` (Repro's Web SDK).
import { install, reproline } from './install.js';

install('reproline');
export { reproline };
