/**
 * The part of every backplane that stays in one process: the nodes (one per `Topics` service)
 * joined to it, which topics each follows, and delivery of a message to the nodes following its
 * topic. A backplane that spans processes adds only the remote half: it follows a topic remotely
 * while some local node follows it.
 */
import type { Deliver } from "../Backplane.js"
import type { Data } from "../WebSocket.js"

/** One member of a hub. */
export interface HubNode {
  readonly deliver: Deliver
  readonly topics: Set<string>
}

export class TopicHub {
  private readonly byTopic = new Map<string, Set<HubNode>>()

  join(deliver: Deliver): HubNode {
    return { deliver, topics: new Set() }
  }

  /** Whether some node follows `topic`. */
  has(topic: string): boolean {
    return this.byTopic.has(topic)
  }

  /** Every topic some node follows. */
  topics(): Array<string> {
    return [...this.byTopic.keys()]
  }

  /** Adds `topic` to the node's; returns true when no node followed it before. */
  follow(node: HubNode, topic: string): boolean {
    if (node.topics.has(topic)) return false
    node.topics.add(topic)
    let nodes = this.byTopic.get(topic)
    const first = nodes === undefined
    if (nodes === undefined) {
      nodes = new Set()
      this.byTopic.set(topic, nodes)
    }
    nodes.add(node)
    return first
  }

  /** Removes `topic` from the node's; returns true when no node follows it any more. */
  unfollow(node: HubNode, topic: string): boolean {
    if (!node.topics.delete(topic)) return false
    const nodes = this.byTopic.get(topic)
    if (nodes === undefined) return false
    nodes.delete(node)
    if (nodes.size > 0) return false
    this.byTopic.delete(topic)
    return true
  }

  /** Removes the node; returns the topics no node follows any more. */
  leave(node: HubNode): Array<string> {
    const orphaned: Array<string> = []
    for (const topic of [...node.topics]) if (this.unfollow(node, topic)) orphaned.push(topic)
    return orphaned
  }

  /** Delivers to every node following `topic` except `origin` (which delivered to its own subscribers). */
  dispatch(topic: string, message: Data, origin?: HubNode): void {
    const nodes = this.byTopic.get(topic)
    if (nodes === undefined) return
    for (const node of nodes) if (node !== origin) node.deliver(topic, message)
  }
}
