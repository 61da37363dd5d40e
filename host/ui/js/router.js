// Client-side routing over the History API: every /ui/… path is answered with the same page, and this picks what to show.

/**
 * Routes `location` to one of `routes` ([pattern, page]) inside `main`. A
 * page is a module whose `mount(main, view)` answers `{destroy, update}`;
 * moving to a URL of the same page with the same path parameters calls
 * `update(view)` instead of mounting afresh (filters in the query string).
 */
export class Router {
  constructor(main, routes, context) {
    this.main = main;
    this.routes = routes;
    this.context = context;
    this.current = null;
    this.before = () => null;
    this.after = () => {};
    window.addEventListener('popstate', () => this.render());
    document.addEventListener('click', (event) => this.intercept(event));
  }

  /** Goes to `url` (a path with its query) without reloading the page. */
  navigate(url, { replace = false } = {}) {
    const target = new URL(url, location.href);
    if (target.origin !== location.origin) {
      location.assign(target.href);
      return;
    }
    const path = target.pathname + target.search + target.hash;
    if (path === location.pathname + location.search + location.hash && !replace) {
      this.render();
      return;
    }
    if (replace) history.replaceState(null, '', path);
    else history.pushState(null, '', path);
    this.render();
  }

  /** Follows same-origin links to dashboard pages in place; everything else (downloads, new tabs, the API) is left to the browser. */
  intercept(event) {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target.closest?.('a[href]');
    if (!link || link.hasAttribute('download') || (link.target && link.target !== '_self')) return;
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin) return;
    if (!(url.pathname === '/' || url.pathname === '/ui' || url.pathname.startsWith('/ui/'))) return;
    if (url.pathname.startsWith('/ui/assets/')) return;
    event.preventDefault();
    this.navigate(url.pathname + url.search + url.hash);
  }

  match(pathname) {
    for (const [pattern, page] of this.routes) {
      const found = pattern.exec(pathname);
      if (found) return { page, params: found.slice(1).map(decodeURIComponent) };
    }
    return null;
  }

  render() {
    const redirect = this.before(location.pathname + location.search);
    if (redirect) {
      history.replaceState(null, '', redirect);
    }
    const found = this.match(location.pathname);
    const view = {
      params: found ? found.params : [],
      query: new URLSearchParams(location.search),
      context: this.context,
    };
    const same = this.current && found && this.current.page === found.page
      && this.current.params.join('\u0000') === view.params.join('\u0000');
    if (same && this.current.instance.update) {
      this.current.instance.update(view);
    } else {
      this.current?.instance?.destroy?.();
      this.main.replaceChildren();
      const page = found ? found.page : this.context.notFound;
      const instance = page.mount(this.main, view) || {};
      this.current = { page, params: view.params, instance };
    }
    this.after(location.pathname);
  }
}
