/** Free loopback ports for test servers: picked below the kernel's ephemeral range (see bench/ports.ts). */
export { freePort } from '../../bench/ports.js';
