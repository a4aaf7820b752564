/**
 * A Feed joins one kind of state's REST snapshot with its live events, exactly
 * (docs/protocol.md section 6): the snapshot's `position` says which publication its rows
 * include; the page subscribes `since` that offset, and an event at or below it (replayed, or
 * buffered while a reload was in flight) is not applied again. No side effects at import.
 *
 *   new Feed(name, {load: () => body, applySnapshot(body), applyEvent(msg), gate: true})
 *
 * `gate: false` leaves the offsets to the caller (the jobs index keeps one per row).
 */
export class Feed {
  constructor(name, { load, applySnapshot, applyEvent, gate = true, onLoaded = () => {}, onError = () => {} }) {
    Object.assign(this, { name, load, applySnapshot, applyEvent, gate, onLoaded, onError });
    this.loading = false;
    this.again = false;
    this.buffer = [];
    this.asOf = {}; // channel -> offset the snapshot includes
    this.position = null; // the last snapshot's position: {channel: {offset, epoch} | null}
    this.loadedAt = 0;
    this.failed = false;
  }

  /** Load the snapshot (again); resolves once it and the events buffered meanwhile are applied. */
  async reload() {
    if (this.loading) { this.again = true; return; }
    this.loading = true;
    this.again = false;
    try {
      const body = await this.load();
      this.position = body && body.position && typeof body.position === "object" ? body.position : {};
      this.asOf = {};
      for (const [channel, p] of Object.entries(this.position)) if (p && Number.isInteger(p.offset)) this.asOf[channel] = p.offset;
      this.applySnapshot(body);
      this.loadedAt = Date.now();
      this.failed = false;
    } catch (err) {
      this.failed = true;
      this.onError(err);
    } finally {
      this.loading = false;
      for (const msg of this.buffer.splice(0)) this.deliver(msg);
      this.onLoaded(this);
      if (this.again) this.reload();
    }
  }

  /** A live publication for this feed. */
  handle(msg) {
    if (this.loading && this.gate) this.buffer.push(msg);
    else this.deliver(msg);
  }

  deliver(msg) {
    if (this.gate && typeof msg.offset === "number" && msg.offset <= (this.asOf[msg.channel] ?? -Infinity)) return;
    this.applyEvent(msg);
  }

  /** The history behind the position is gone (a new epoch): offsets start again. */
  forget() { this.asOf = {}; }
}
