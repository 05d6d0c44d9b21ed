// Annotorious' ES module build reads `process.env.NODE_ENV` once (in its bundled nanostores), a name
// a bundler would have replaced; without a build step, this module (imported before it) defines
// that one value, so the vendored file stays byte for byte what the npm registry ships.
if (typeof globalThis.process === 'undefined') {
  globalThis.process = Object.freeze({ env: Object.freeze({ NODE_ENV: 'production' }) });
}
