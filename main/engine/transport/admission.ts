// Who may start a handshake with this node. Until a peer has proven the join code it is a
// stranger, and strangers get little: a few connections per address and a few dozen in all at
// once, and a handshake rate per address (a TLS handshake costs this node about a millisecond of
// CPU). A connection counts from its first TCP byte until it is proven or gone; proven
// connections are not counted here. Pure bookkeeping with an injected clock; the job server asks
// it before it starts TLS on a socket. Loopback peers run on this very computer (tests, the
// survey, a local submitter making many short connections): only the total applies to them.

export interface AdmissionLimits {
  /** Unproven connections at once from one address. */
  perAddress: number;
  /** Unproven connections at once from everyone. */
  total: number;
  /** Handshakes one address may start per second, on average... */
  handshakesPerSecond: number;
  /** ...and in a burst. */
  handshakeBurst: number;
}

export const DEFAULT_ADMISSION_LIMITS: AdmissionLimits = {
  perAddress: 8,
  total: 64,
  handshakesPerSecond: 10,
  handshakeBurst: 20,
};

/** Addresses whose rate is remembered; the longest idle are forgotten first (a full bucket). */
const MAX_TRACKED_ADDRESSES = 4096;

interface AddressState {
  open: number;
  tokens: number;
  refilledAt: number;
}

export type Admitted = { ok: true; release: () => void } | { ok: false; reason: string };

export class Admission {
  private readonly addresses = new Map<string, AddressState>();
  private open = 0;

  constructor(
    private readonly limits: AdmissionLimits = DEFAULT_ADMISSION_LIMITS,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Unproven connections now (for tests and logs). */
  get unproven(): number {
    return this.open;
  }

  /** Lets a new connection from `address` start its handshake, or says why not. */
  admit(address: string): Admitted {
    if (this.open >= this.limits.total) {
      return { ok: false, reason: `${this.open} unproven connections already (limit ${this.limits.total})` };
    }
    if (isLoopback(address)) return this.count(null);
    const now = this.clock();
    const state = this.stateOf(address, now);
    if (state.open >= this.limits.perAddress) {
      return {
        ok: false,
        reason: `${state.open} unproven connections from this address already (limit ${this.limits.perAddress})`,
      };
    }
    if (state.tokens < 1) {
      return {
        ok: false,
        reason: `more than ${this.limits.handshakesPerSecond} handshakes a second from this address`,
      };
    }
    state.tokens -= 1;
    return this.count(state);
  }

  private count(state: AddressState | null): Admitted {
    if (state !== null) state.open += 1;
    this.open += 1;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        if (state !== null) state.open -= 1;
        this.open -= 1;
      },
    };
  }

  private stateOf(address: string, now: number): AddressState {
    let state = this.addresses.get(address);
    if (state === undefined) {
      state = { open: 0, tokens: this.limits.handshakeBurst, refilledAt: now };
      this.forgetIdle();
    } else {
      // Refill, and move it to the end: the map's order is least recently used first.
      const seconds = Math.max(0, now - state.refilledAt) / 1000;
      state.tokens = Math.min(
        this.limits.handshakeBurst,
        state.tokens + seconds * this.limits.handshakesPerSecond,
      );
      state.refilledAt = now;
      this.addresses.delete(address);
    }
    this.addresses.set(address, state);
    return state;
  }

  /** Bounded memory: forgetting an address without open connections only gives it a full bucket. */
  private forgetIdle(): void {
    if (this.addresses.size < MAX_TRACKED_ADDRESSES) return;
    for (const [address, state] of this.addresses) {
      if (this.addresses.size < MAX_TRACKED_ADDRESSES) return;
      if (state.open === 0) this.addresses.delete(address);
    }
  }
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}
