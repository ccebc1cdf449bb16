// The one HTTP transport of the engine (the hub, W&B): fetch through the proxy the environment names, as curl and
// Python's requests read it — https_proxy / HTTPS_PROXY for https URLs, http_proxy / HTTP_PROXY for http, and
// no_proxy / NO_PROXY (host names, domain suffixes, host:port, or *) to go direct. Node 20's own fetch ignores these
// variables and exposes no proxy agent, so this is undici's fetch with undici's EnvHttpProxyAgent (the npm package:
// the same library Node bundles, with its proxy support). The variables come from an injected environment (a
// request of `atp serve`, the editor's worker, a test), never read behind the caller's back.
// ATP_PROXY_STRICT_SSL=0 accepts a proxy's or server's self-signed certificate: VS Code's http.proxyStrictSSL false.
import { EnvHttpProxyAgent, fetch as undiciFetch } from 'undici';
import { InputError } from '../shared/errors';

type Env = Readonly<Record<string, string | undefined>>;

interface ProxySettings {
  httpProxy: string;
  httpsProxy: string;
  noProxy: string;
  strictSsl: boolean;
}

/** The proxy variables in use, checked: a value that is no http(s) URL is an InputError naming the variable (never its credentials). */
export function proxySettings(env: Env = process.env): ProxySettings {
  const read = (lower: string, upper: string): string => {
    const [name, value] = env[lower] ? [lower, env[lower]!] : [upper, env[upper] ?? ''];
    const given = value.trim();
    if (given === '') return '';
    // host:port without a scheme is an http proxy, as curl (and atp install-cuda) read it.
    const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(given) ? given : `http://${given}`;
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new InputError(`${name} is not a URL (expected e.g. http://proxy.example.com:3128); its value was not shown, as it may hold a password`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new InputError(`${name} must be an http:// or https:// proxy URL, not ${url.protocol}`);
    }
    return text;
  };
  return {
    httpProxy: read('http_proxy', 'HTTP_PROXY'),
    httpsProxy: read('https_proxy', 'HTTPS_PROXY'),
    noProxy: (env.no_proxy ?? env.NO_PROXY ?? '').trim(),
    strictSsl: env.ATP_PROXY_STRICT_SSL !== '0',
  };
}

/** One agent per distinct setting: connections are pooled across requests, as a plain fetch's are. */
const agents = new Map<string, EnvHttpProxyAgent>();

function agentFor(settings: ProxySettings): EnvHttpProxyAgent {
  const key = JSON.stringify(settings);
  let agent = agents.get(key);
  if (!agent) {
    // Empty strings, not undefined: undefined would make undici read process.env itself.
    agent = new EnvHttpProxyAgent({
      httpProxy: settings.httpProxy,
      httpsProxy: settings.httpsProxy,
      noProxy: settings.noProxy,
      ...(settings.strictSsl ? {} : { connect: { rejectUnauthorized: false }, requestTls: { rejectUnauthorized: false } }),
    });
    agents.set(key, agent);
  }
  return agent;
}

/** fetch, through the proxy `env` names (see above). The Response is the standard one callers already use. */
export async function httpFetch(url: string, init: RequestInit = {}, env: Env = process.env): Promise<Response> {
  const dispatcher = agentFor(proxySettings(env));
  return (await undiciFetch(url, { ...(init as object), dispatcher } as Parameters<typeof undiciFetch>[1])) as unknown as Response;
}
