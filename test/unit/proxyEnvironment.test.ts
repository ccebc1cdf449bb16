// VS Code's http.proxy, http.noProxy and http.proxyStrictSSL as the engine process's environment, and that the
// engine client starts its process with them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { proxyEnvironment } from '../../src/services/proxyEnvironment';
import { proxySettings } from '../../src/engine/httpTransport';

test('the editor’s proxy settings become the variables the engine’s transport reads', () => {
  assert.deepEqual(proxyEnvironment({}), {});
  assert.deepEqual(proxyEnvironment({ proxy: '  ', noProxy: [], strictSSL: true }), {});
  const env = proxyEnvironment({ proxy: 'http://proxy.corp:3128', noProxy: ['localhost', ' .corp.example '], strictSSL: false });
  assert.deepEqual(env, {
    HTTPS_PROXY: 'http://proxy.corp:3128',
    HTTP_PROXY: 'http://proxy.corp:3128',
    https_proxy: 'http://proxy.corp:3128',
    http_proxy: 'http://proxy.corp:3128',
    NO_PROXY: 'localhost,.corp.example',
    no_proxy: 'localhost,.corp.example',
    ATP_PROXY_STRICT_SSL: '0',
  });
  // The settings override what VS Code was started with, lower-case names included (they win in the transport).
  assert.deepEqual(proxySettings(Object.assign({ http_proxy: 'http://old:1' }, env)), {
    httpProxy: 'http://proxy.corp:3128',
    httpsProxy: 'http://proxy.corp:3128',
    noProxy: 'localhost,.corp.example',
    strictSsl: false,
  });
});

test('the engine process is started with them, and restarted when they change', () => {
  assert.match(
    readFileSync('src/services/engineClient.ts', 'utf8'),
    /env: \{ \.\.\.process\.env, \.\.\.this\.options\.environment\?\.\(\), ELECTRON_RUN_AS_NODE: '1' \}/,
  );
  const extension = readFileSync('src/extension.ts', 'utf8');
  assert.match(extension, /environment: proxySettings/);
  assert.match(extension, /'http\.proxy', 'http\.noProxy', 'http\.proxyStrictSSL'\]\.some\(.*\) engine\.restart\(\)/);
});
