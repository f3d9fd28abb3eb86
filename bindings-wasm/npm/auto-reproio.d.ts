export { reproio } from './index.js';
