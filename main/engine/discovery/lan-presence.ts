// This node's presence on the LAN: one mDNS service per LAN interface it uses (a multi-homed
// machine needs one each), all feeding one membership view that is swept for silence twice a
// second. A node announces itself; `deskgrid nodes` and submitters only listen. Each sweep also
// paces the queries to the number of nodes heard (query-pace.ts), and the silence that makes a
// node offline with them.

import { createLogger } from '../log.js';
import { MdnsService, type Advertisement } from './mdns-service.js';
import { Membership, type MembershipOptions } from './membership.js';
import { offlineAfterFor, queryIntervalFor } from './query-pace.js';

const log = createLogger('lan-presence');
const SWEEP_INTERVAL_MS = 500;

export interface LanPresenceOptions {
  self: Advertisement;
  /** Announce this node, or only listen. */
  publish: boolean;
  /** IPv4 addresses of the LAN interfaces to use. */
  interfaces: readonly string[];
  membership?: Omit<MembershipOptions, 'cluster' | 'protocol' | 'selfId'>;
  /** Errors that did not stop discovery (a link that went down): for logs and the doctor. */
  onError?: (error: Error) => void;
}

export class LanPresence {
  readonly membership: Membership;
  private readonly services: MdnsService[] = [];
  private readonly timer: NodeJS.Timeout;

  private constructor(options: LanPresenceOptions) {
    this.membership = new Membership({
      ...options.membership,
      cluster: options.self.cluster,
      protocol: options.self.protocol,
      selfId: options.self.id,
    });
    this.timer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.timer.unref();
  }

  /** Starts on every given interface; throws (having started nothing) if one cannot be used. */
  static start(options: LanPresenceOptions): LanPresence {
    const presence = new LanPresence(options);
    try {
      for (const interfaceAddress of options.interfaces) {
        presence.services.push(
          MdnsService.start({
            interfaceAddress,
            self: options.self,
            publish: options.publish,
            onSighting: (sighting) => presence.membership.see(sighting),
            onGoodbye: (id, address) => presence.membership.goodbye(id, address),
            onError: (error) => {
              log.warn('mdns error', { interface: interfaceAddress, message: error.message });
              options.onError?.(error);
            },
          }),
        );
      }
    } catch (error) {
      presence.destroy();
      throw error;
    }
    return presence;
  }

  private sweep(): void {
    const interval = queryIntervalFor(this.membership.size);
    for (const service of this.services) service.setQueryInterval(interval);
    this.membership.setOfflineAfter(offlineAfterFor(interval));
    this.membership.sweep();
  }

  /** Says goodbye on every interface (peers drop this node at once), then stops. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.services.map((service) => service.stop()));
  }

  destroy(): void {
    clearInterval(this.timer);
    for (const service of this.services) service.destroy();
  }
}
