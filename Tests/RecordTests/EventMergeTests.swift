import Testing
import Trace
@testable import Record
#if canImport(Glibc)
import Glibc
#endif

@Suite("The recorder's time-ordered merge of ioctls and kernel events")
struct EventMergeTests {
    static func marker(_ t: UInt64, _ text: String) -> Event { Event(time: t, tid: 1, .marker(Marker(text))) }
    static let ms: UInt64 = 1_000_000

    func texts(_ events: [Event]) -> [String] {
        events.map { if case .marker(let m) = $0.body { return m.text } else { return "?" } }
    }

    @Test("events come out in time order; equal times keep their arrival order")
    func order() {
        var m = EventMerge()
        for (t, s) in [(30, "c"), (10, "a"), (20, "b1"), (20, "b2"), (5, "first")] as [(UInt64, String)] {
            m.hold(Self.marker(t * Self.ms, s))
        }
        let out = m.release(now: 100 * Self.ms, callsInFlightSince: [], oldestOpenKernelCall: nil)
        #expect(texts(out) == ["first", "a", "b1", "b2", "c"])
        #expect(m.count == 0)
    }

    @Test("nothing within the kernel's margin of now, and nothing after a call still in flight, is released")
    func watermark() {
        var m = EventMerge()
        m.hold(Self.marker(10 * Self.ms, "old"))
        m.hold(Self.marker(99 * Self.ms, "too recent"))
        #expect(texts(m.release(now: 100 * Self.ms, callsInFlightSince: [], oldestOpenKernelCall: nil)) == ["old"])
        m.hold(Self.marker(150 * Self.ms, "after the call"))
        // A call entered at 120 ms is still running at 300 ms: its event will
        // be stamped 120 ms, so only what came before that may be written.
        #expect(texts(m.release(now: 300 * Self.ms, callsInFlightSince: [120 * Self.ms], oldestOpenKernelCall: nil)) == ["too recent"])
        #expect(m.release(now: 300 * Self.ms, callsInFlightSince: [120 * Self.ms], oldestOpenKernelCall: nil).isEmpty)
        // A kernel call still open holds back the same way.
        #expect(m.release(now: 300 * Self.ms, callsInFlightSince: [], oldestOpenKernelCall: 130 * Self.ms).isEmpty)
        #expect(texts(m.release(now: 300 * Self.ms, callsInFlightSince: [], oldestOpenKernelCall: nil)) == ["after the call"])
    }

    @Test("a call that blocks longer than a second stops holding the others back")
    func patience() {
        var m = EventMerge()
        m.hold(Self.marker(500 * Self.ms, "later"))
        let entered = 100 * Self.ms
        #expect(m.release(now: entered + EventMerge.patience - 1, callsInFlightSince: [entered], oldestOpenKernelCall: nil).isEmpty)
        #expect(texts(m.release(now: entered + EventMerge.patience, callsInFlightSince: [entered], oldestOpenKernelCall: nil)) == ["later"])
    }

    @Test("the threshold for an early merge doubles with what stays held; releaseAll empties it; drop forgets")
    func thresholdAndEnd() {
        var m = EventMerge()
        #expect(m.threshold == 4096)
        for i in 0..<5000 { m.hold(Self.marker(UInt64(200 + i) * Self.ms, "e\(i)")) }
        #expect(m.release(now: 300 * Self.ms, callsInFlightSince: [150 * Self.ms], oldestOpenKernelCall: nil).isEmpty)
        #expect(m.threshold == 10_000)
        let all = m.releaseAll()
        #expect(all.count == 5000 && texts(all).first == "e0" && texts(all).last == "e4999")
        #expect(m.threshold == 4096 && m.count == 0)
        m.hold(Self.marker(1, "x"))
        m.drop()
        #expect(m.count == 0 && m.releaseAll().isEmpty)
    }
}

@Suite("Tracee stops decoded from the wait status")
struct TraceeStopTests {
    @Test("exits, kills, syscall stops, seccomp stops, signals and other events")
    func decode() {
        #expect(TraceeStop.decode(pid: 7, kind: 0, value: 3, event: 0, syscallStop: false) == .exited(7, status: 3))
        #expect(TraceeStop.decode(pid: 7, kind: 1, value: SIGKILL, event: 0, syscallStop: false) == .killed(7, signal: SIGKILL))
        #expect(TraceeStop.decode(pid: 7, kind: 2, value: SIGTRAP, event: 0, syscallStop: true) == .syscall(7))
        #expect(TraceeStop.decode(pid: 7, kind: 2, value: SIGTRAP, event: 7, syscallStop: false) == .seccomp(7))
        #expect(TraceeStop.decode(pid: 7, kind: 2, value: SIGUSR1, event: 0, syscallStop: false) == .signal(7, SIGUSR1))
        #expect(TraceeStop.decode(pid: 7, kind: 2, value: SIGTRAP, event: 6, syscallStop: false) == .otherEvent(7))
        #expect(TraceeStop.decode(pid: 7, kind: 2, value: SIGTRAP, event: 128, syscallStop: false) == .otherEvent(7))
        #expect(TraceeStop.decode(pid: 7, kind: 2, value: SIGSTOP, event: 128, syscallStop: false) == .groupStop(7))
        #expect(TraceeStop.decode(pid: 7, kind: 2, value: SIGTSTP, event: 128, syscallStop: false) == .groupStop(7))
    }

    @Test("detaching hands on a signal meant for the tracee, never the tracer's SIGSTOP or SIGTRAP")
    func detachSignal() {
        #expect(TraceeStop.signal(7, SIGUSR1).signalToDeliverOnDetach == SIGUSR1)
        #expect(TraceeStop.signal(7, SIGSTOP).signalToDeliverOnDetach == 0)
        #expect(TraceeStop.signal(7, SIGTRAP).signalToDeliverOnDetach == 0)
        #expect(TraceeStop.syscall(7).signalToDeliverOnDetach == 0)
        #expect(TraceeStop.interrupted.pid == nil && TraceeStop.exec(7, formerTID: 9).pid == 7)
    }
}
