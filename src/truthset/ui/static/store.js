// Local persistence, per member: drafts, the current assignment, and the outbox of answers not yet
// acknowledged by the server. localStorage survives reloads, crashes and closed tabs.

export function createStore(memberId) {
  const prefix = `truthset:${memberId}:`;
  return {
    get(key, fallback = null) {
      try {
        const raw = localStorage.getItem(prefix + key);
        return raw === null ? fallback : JSON.parse(raw);
      } catch {
        return fallback;
      }
    },
    set(key, value) {
      try {
        localStorage.setItem(prefix + key, JSON.stringify(value));
        return true;
      } catch {
        return false; // quota or privacy mode: the page still works, without the safety net
      }
    },
    remove(key) {
      try {
        localStorage.removeItem(prefix + key);
      } catch {
        // ignore
      }
    },
  };
}

/** Answers (and skips) waiting for the server's acknowledgement, oldest first. */
export class Outbox {
  constructor(store) {
    this.store = store;
  }

  list() {
    return this.store.get('outbox', []);
  }

  has(key) {
    return this.list().some((entry) => entry.key === key);
  }

  put(entry) {
    const entries = this.list().filter((e) => e.key !== entry.key);
    entries.push(entry);
    return this.store.set('outbox', entries);
  }

  remove(key) {
    this.store.set('outbox', this.list().filter((e) => e.key !== key));
  }

  get size() {
    return this.list().length;
  }
}
