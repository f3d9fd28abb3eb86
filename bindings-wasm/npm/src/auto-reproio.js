// Opt-in entry for pages WITHOUT Repro's Web SDK that want Repro-style names: the same as
// auto.js under `window.reproio` (load it with the snippet's name set to "reproio"). If the
// name already holds another script's function (Repro's SDK), it is left alone.
import { install, reproline } from './install.js';

install('reproio');
export { reproline as reproio };
