/**
 * A Feed joins one kind of state's REST snapshot with its live events, exactly
 * (docs/protocol.md section 6): the snapshot's `position` says which publication its rows
 * include; the page subscribes `since` that offset, and an event at or below it (replayed, or
 * buffered while a reload was in flight) is not applied again. No side effects at import.
 *
 *   new Feed(name, {load: () => body, applySnapshot(body), applyEvent(msg), gate: true})
 *
 * `gate: false` leaves the offsets to the caller (the jobs index keeps one per row).
 *
 * A snapshot whose `updated_at` is null was read before the monitor first saved that stream.
 * On an empty store that first poll is a baseline: saved, but published as no event, so its
 * rows would never reach the page. `catchFirstSave(savedAt)` loads again once the page hears
 * the stream was saved (section 6, "first save").
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
    this.updatedAt = undefined; // the last snapshot's `updated_at`: null, the stream was never saved
    this.reloadedFor = undefined; // the save time `catchFirstSave` last loaded again for
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
      this.updatedAt = body && "updated_at" in body ? body.updated_at : undefined;
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

  /**
   * The stream was saved at `savedAt` (metrics_update's `streams`; undefined:
   * not known to be saved) while the last snapshot predates its first save: load again. Once
   * per `savedAt` (a save that failed is retried at the next one), never while a load is in
   * flight (call again when it ends). Returns whether it reloads.
   */
  catchFirstSave(savedAt) {
    if (this.loading || this.updatedAt !== null || savedAt === undefined || savedAt === this.reloadedFor) return false;
    this.reloadedFor = savedAt;
    this.reload();
    return true;
  }

  /** The history behind the position is gone (a new epoch): offsets start again. */
  forget() { this.asOf = {}; }
}
