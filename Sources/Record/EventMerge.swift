import Trace

/// The time-ordered merge of the recorder's two streams: ioctls (stamped at
/// call entry) and the kernel's pin events (stamped by the kernel, read a
/// tick later). An event is held until nothing earlier can still arrive:
/// no call in flight entered before it and the kernel's buffers have been
/// read past it. A pure type: the recorder feeds it events and the current
/// state, it answers with the events ready to write, in order.
struct EventMerge {
    /// A kernel event reaches its buffer within microseconds of its stamp;
    /// this margin covers a probe still being written.
    static let kernelMargin: UInt64 = 2_000_000
    /// A call in flight holds back later events for this long at most: a
    /// call that blocks longer (or a kernel call whose return was lost)
    /// must not hold every other event in memory. Its event is then
    /// written when it ends, after events stamped later (times are signed
    /// deltas in the trace).
    static let patience: UInt64 = 1_000_000_000

    private var held: [(event: Event, order: UInt64)] = []
    private var arrivals: UInt64 = 0
    /// How many held events make the recorder merge before its tick;
    /// doubles while a call in flight keeps them from being written.
    private(set) var threshold = 4096

    var count: Int { held.count }

    mutating func hold(_ e: Event) {
        held.append((e, arrivals))
        arrivals += 1
    }

    /// The held events stamped before the watermark, oldest first (ties
    /// in arrival order, so a loss record stays ahead of its page's
    /// events): `now` less the kernel margin, and no later than the entry
    /// of any call still in flight, or any kernel call still open, that
    /// has waited less than ``patience``.
    mutating func release(now: UInt64, callsInFlightSince: some Sequence<UInt64>, oldestOpenKernelCall: UInt64?) -> [Event] {
        var watermark = now &- Self.kernelMargin
        for t in callsInFlightSince where now &- t < Self.patience { watermark = min(watermark, t) }
        if let t = oldestOpenKernelCall, now &- t < Self.patience { watermark = min(watermark, t) }
        return take { $0.time < watermark }
    }

    /// Every held event, in order: the recording is over.
    mutating func releaseAll() -> [Event] { take { _ in true } }

    /// Forgets every held event (the trace can no longer be written).
    mutating func drop() { held = [] }

    private mutating func take(while ready: (Event) -> Bool) -> [Event] {
        held.sort { ($0.event.time, $0.order) < ($1.event.time, $1.order) }
        let n = held.firstIndex { !ready($0.event) } ?? held.count
        let out = held[0..<n].map(\.event)
        held.removeFirst(n)
        threshold = max(4096, held.count * 2)
        return out
    }
}
