/**
 * A fetch that keeps cookies for one site as a browser does (name, path, expiry), for clients under test in
 * Node, whose fetch keeps none. `requests` counts what was sent, by method and path.
 */
export interface CookieJarFetch {
  fetch: (request: Request) => Promise<Response>;
  requests: { method: string; path: string }[];
}

interface StoredCookie {
  name: string;
  value: string;
  path: string;
}

export function cookieJarFetch(): CookieJarFetch {
  const cookies = new Map<string, StoredCookie>();
  const requests: { method: string; path: string }[] = [];
  return {
    requests,
    async fetch(request) {
      const url = new URL(request.url);
      requests.push({ method: request.method, path: url.pathname });
      const sent = [...cookies.values()]
        .filter(
          (cookie) =>
            url.pathname === cookie.path || url.pathname.startsWith(cookie.path.replace(/\/?$/, '/')),
        )
        .map((cookie) => `${cookie.name}=${cookie.value}`);
      if (sent.length > 0) request.headers.set('Cookie', sent.join('; '));
      const response = await fetch(request);
      for (const header of response.headers.getSetCookie()) {
        const [pair, ...attributes] = header.split(';').map((part) => part.trim());
        const at = pair.indexOf('=');
        const cookie = { name: pair.slice(0, at), value: pair.slice(at + 1), path: '/' };
        let expired = false;
        for (const attribute of attributes) {
          const [key, value = ''] = attribute.split('=');
          if (/^path$/i.test(key)) cookie.path = value;
          if (/^max-age$/i.test(key) && Number(value) <= 0) expired = true;
          if (/^expires$/i.test(key) && Date.parse(value) <= Date.now()) expired = true;
        }
        const key = `${cookie.name};${cookie.path}`;
        if (expired) cookies.delete(key);
        else cookies.set(key, cookie);
      }
      return response;
    },
  };
}
