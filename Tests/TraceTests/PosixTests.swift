import Foundation
import Testing
@testable import Trace
#if canImport(Glibc)
import Glibc
#endif

@Suite("The syscall layer and Linux errno numbers")
struct PosixTests {
    @Test("Linux errno numbers are the kernel's (this host's libc agrees on Linux), and have their names")
    func errnoNumbers() {
        let pairs: [(LinuxErrno, Int32, String)] = [
            (.EPERM, EPERM, "EPERM"), (.ENOENT, ENOENT, "ENOENT"), (.E2BIG, E2BIG, "E2BIG"), (.EBADF, EBADF, "EBADF"),
            (.ENOMEM, ENOMEM, "ENOMEM"), (.EACCES, EACCES, "EACCES"), (.EFAULT, EFAULT, "EFAULT"), (.EBUSY, EBUSY, "EBUSY"),
            (.EEXIST, EEXIST, "EEXIST"), (.ENODEV, ENODEV, "ENODEV"), (.EINVAL, EINVAL, "EINVAL"), (.ENOTTY, ENOTTY, "ENOTTY"),
            (.ENOSPC, ENOSPC, "ENOSPC"), (.ENOSYS, ENOSYS, "ENOSYS"), (.EBADFD, EBADFD, "EBADFD"), (.EOPNOTSUPP, EOPNOTSUPP, "EOPNOTSUPP"),
        ]
        for (e, host, name) in pairs {
            #expect(e.rawValue == host, "\(name)")
            #expect(e.description == name && ErrnoName.number(name) == e.rawValue)
        }
        #expect(CallResult.error(.EINVAL) == .error(22))
    }

    @Test("writeAll writes everything through a pipe; readToEnd reads it back and refuses past its limit")
    func pipeRoundTrip() throws {
        var p: [Int32] = [0, 0]
        #expect(pipe(&p) == 0)
        let data = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let writeEnd = p[1]
        let writer = Thread {
            _ = data.withUnsafeBytes { Posix.writeAll(writeEnd, $0) }
            close(writeEnd)
        }
        writer.start()
        let back = Posix.readToEnd(p[0], limit: 1 << 20, chunk: 4096)
        close(p[0])
        #expect((try? back.get()) == data)

        #expect(pipe(&p) == 0)
        _ = data.withUnsafeBytes { Posix.writeAll(p[1], UnsafeRawBufferPointer(rebasing: $0[0..<5000])) }
        close(p[1])
        if case .failure(let e) = Posix.readToEnd(p[0], limit: 1000) { #expect(e.code == EFBIG) } else { Issue.record("no limit") }
        close(p[0])
        #expect(Posix.writeAll(-1, UnsafeRawBufferPointer(start: nil, count: 0)) == nil, "nothing to write is no error")
        #expect([UInt8](repeating: 1, count: 4).withUnsafeBytes { Posix.writeAll(-1, $0) } == EBADF)
    }

    @Test("readlink, uname, the current directory, and group names from nodes")
    func lookups() throws {
        let dir = NSTemporaryDirectory() + "vfiotrace-posix-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createSymbolicLink(atPath: dir + "/l", withDestinationPath: "/dev/vfio/12")
        #expect(Posix.readLink(dir + "/l") == "/dev/vfio/12")
        #expect(Posix.readLink(dir + "/missing") == nil)
        #expect(IOMMUGroups.groupName(ofNode: "/dev/vfio/12") == "12")
        #expect(KernelVersion(release: Posix.uname().release) != nil)
        #expect(Posix.currentDirectory() == FileManager.default.currentDirectoryPath)
        #expect(IOMMUGroups.node(ofPCIDevice: "0000:99:99.9") == nil)
        #expect(IOMMUGroups.kind(ofGroup: "no-such-group") == .unknown)
    }
}
