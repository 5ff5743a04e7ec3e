import Foundation
import Testing
import Trace
@testable import Record
#if canImport(Glibc)
import Glibc
#endif

@Suite("A failed call on an fd replaced mid-call is kept as a note")
struct SyscallEntryTests {
    /// A call on fd `fd` of this process whose event is a CHECK_EXTENSION.
    func call(_ fd: Int32) -> PendingCall {
        PendingCall { r, _ in .checkExtension(CheckExtension(fd: fd, ext: 3, result: callResult(r))) }
    }

    @Test("same file and no close meanwhile: the event; fd now another file, or closed and reopened as the same path: a marker")
    func replaced() throws {
        let fd = open("/dev/null", O_RDONLY)
        #expect(fd >= 0)
        defer { close(fd) }
        let me = TraceeMemory(pid: getpid())
        let target = try #require(me.fdTarget(fd))
        #expect(target == "/dev/null")
        nonisolated(unsafe) var closes: UInt64 = 5
        let counter: (Int32) -> UInt64 = { _ in closes }
        let guarded = SyscallEntry.unlessReplaced(call(fd), fd: fd, target: target, what: "ioctl 0x3b65",
                                                 closesAtEntry: counter(fd), closes: counter)
        // Failed, nothing happened to the fd: the call as decoded.
        if case .checkExtension(let x)? = guarded.finish(-25, me) { #expect(x.result == .error(25)) } else { Issue.record("not the event") }
        // Succeeded: never a note, even after a close.
        closes += 1
        if case .checkExtension? = guarded.finish(1, me) {} else { Issue.record("a successful call became a note") }
        // Failed after a close of that fd number entered (closed, reused,
        // reopened as the same path before the exit was seen): a note.
        guard case .marker(let m)? = guarded.finish(-25, me) else { Issue.record("no note after a close"); return }
        #expect(m.text.contains("closed and reopened as /dev/null"), "\(m.text)")
        // The fd now names another file: a note that says which.
        let other = SyscallEntry.unlessReplaced(call(fd), fd: fd, target: "/dev/vfio/vfio", what: "ioctl 0x3b65",
                                               closesAtEntry: counter(fd), closes: counter)
        guard case .marker(let n)? = other.finish(-25, me) else { Issue.record("no note for a reused fd"); return }
        #expect(n.text.contains("reused for /dev/null") && n.text.contains("it was /dev/vfio/vfio at entry"), "\(n.text)")
    }
}
