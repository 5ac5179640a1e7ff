// What a node is called on screen: its name, and beside it its short id when another node has the
// same name (two computers set up from one image are both "vm" or "DESKTOP-1"), so that no two
// nodes ever look the same.

import type { NodeInfo } from '../../../shared/ui-api.js';

/** The first 8 hex characters of a node id, grouped as the CLI shows them: "3f9a-1c2e". */
export function shortId(id: string): string {
  return `${id.slice(0, 4)}-${id.slice(4, 8)}`;
}

/** Node id -> what to call it. */
export function nodeLabels(nodes: readonly Pick<NodeInfo, 'id' | 'name'>[]): Map<string, string> {
  const named = new Map<string, number>();
  for (const node of nodes) named.set(node.name, (named.get(node.name) ?? 0) + 1);
  return new Map(
    nodes.map((node) => [
      node.id,
      (named.get(node.name) ?? 0) > 1 ? `${node.name} (${shortId(node.id)})` : node.name,
    ]),
  );
}
