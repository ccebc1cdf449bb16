// VS Code's proxy settings as the engine process reads them: the worker's fetch honours HTTPS_PROXY, HTTP_PROXY and
// NO_PROXY (src/engine/httpTransport.ts), so the editor's http.proxy, http.noProxy and http.proxyStrictSSL become
// those variables in the worker's environment. Unset settings leave the variables VS Code was started with. Pure (no
// vscode import): the composition root reads the settings and the unit tests call it directly.

export interface ProxySettings {
  /** http.proxy: one proxy for http and https URLs ("" = none configured). */
  proxy?: string;
  /** http.noProxy: hosts (and domain suffixes) to reach directly. */
  noProxy?: readonly string[];
  /** http.proxyStrictSSL: false accepts self-signed certificates (a TLS-inspecting proxy). */
  strictSSL?: boolean;
}

export function proxyEnvironment(settings: ProxySettings): Record<string, string> {
  const env: Record<string, string> = {};
  const proxy = settings.proxy?.trim();
  if (proxy) {
    // The lower-case names too: they win over the upper-case ones where both are set (curl, requests, undici).
    for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy']) env[name] = proxy;
  }
  const noProxy = (settings.noProxy ?? []).map((host) => host.trim()).filter(Boolean);
  if (noProxy.length > 0) env.NO_PROXY = env.no_proxy = noProxy.join(',');
  if (settings.strictSSL === false) env.ATP_PROXY_STRICT_SSL = '0';
  return env;
}
