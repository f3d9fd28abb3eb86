export { reproline } from './index.js';
