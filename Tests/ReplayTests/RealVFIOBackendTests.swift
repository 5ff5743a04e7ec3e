import CVFIO
import Testing
import Trace
@testable import Replay
#if canImport(Glibc)
import Glibc
#endif

/// What the real-VFIO backend can be checked for without a VFIO device: its
/// argument layouts against <linux/vfio.h>, the user memory it builds for
/// each pointer class, and the decoding of GET_INFO. The backend itself
/// runs on real kernels in the VM lab lane (scripts/lab-lane).
/// Asks the kernel to copy through an address (a pipe), which fails with
/// EFAULT instead of crashing when the address is not accessible.
enum Probe {
    static func canRead(_ address: UInt64) -> Bool {
        var p: [Int32] = [0, 0]
        pipe(&p)
        defer { close(p[0]); close(p[1]) }
        return write(p[1], UnsafeRawPointer(bitPattern: UInt(address)), 1) == 1
    }

    static func canWrite(_ address: UInt64) -> Bool {
        var p: [Int32] = [0, 0]
        pipe(&p)
        defer { close(p[0]); close(p[1]) }
        var byte: UInt8 = 7
        _ = write(p[1], &byte, 1)
        return read(p[0], UnsafeMutableRawPointer(bitPattern: UInt(address)), 1) == 1
    }
}

@Suite("Real-VFIO backend without a device")
struct RealVFIOBackendTests {
    @Test("the vfiotrace_pin control request has one layout for the module and for Swift")
    func pinRequest() {
        #expect(MemoryLayout<vfiotrace_pin_req>.size == 32)
        #expect(MemoryLayout<vfiotrace_pin_req>.offset(of: \.iova) == 8)
        #expect(MemoryLayout<vfiotrace_pin_req>.offset(of: \.result) == 24)
        // _IOWR(';', 0xf0, 32 bytes): read|write, size 32, type ';', nr 0xf0.
        #expect(cvfio_PIN_IOCTL == 0xC020_3BF0)
    }

    @Test("a buffer that faults after N bytes ends exactly at an inaccessible page, holding the prior bytes")
    func partialBuffer() throws {
        let prior: [UInt8] = (0..<16).map { UInt8($0 + 1) }
        let r = try #require(UserRegion(UserPointer(.valid, accessibleBytes: 12), size: 16, contents: BitmapBytes(prior)))
        let page = UInt64(UserRegion.pageSize)
        #expect((r.address + 12) % page == 0)
        #expect(r.readable == 12)
        #expect(r.contents(16, fallback: BitmapBytes(repeating: 0xEE, count: 16)) == BitmapBytes(Array(prior[0..<12]) + [0xEE, 0xEE, 0xEE, 0xEE]))
        #expect(r.contents(16, fallback: BitmapBytes(prior)) == BitmapBytes(prior))
        // The byte after the accessible ones is PROT_NONE: the kernel's
        // copy into it fails with EFAULT, the one before it works.
        #expect(!Probe.canWrite(r.address + 12))
        #expect(Probe.canWrite(r.address + 11))
    }

    @Test("NULL, kernel, unmapped and read-only pointers")
    func pointerClasses() throws {
        #expect(UserRegion(.null, size: 8)?.address == 0)
        #expect(UserRegion(UserPointer(.null, pageOffset: 0x10), size: 8)?.address == 0x10)
        #expect(UserRegion(UserPointer(.kernel), size: 8)?.address == UserRegion.kernelAddress)
        let hole = try #require(UserRegion(UserPointer(.unmapped), size: 64))
        #expect(hole.readable == 0)
        #expect(!Probe.canRead(hole.address))
        let ro = try #require(UserRegion(UserPointer(.readOnly, pageOffset: 0x20), size: 16, contents: BitmapBytes([9, 9])))
        #expect(ro.address % UInt64(UserRegion.pageSize) == 0x20)
        #expect(Probe.canRead(ro.address))
        #expect(ro.contents(2, fallback: nil) == BitmapBytes([9, 9]))
        #expect(!Probe.canWrite(ro.address))
    }

    @Test("GET_INFO bytes decode into the capability chain, following next and stopping at loops")
    func decodeInfo() {
        var b = [UInt8](repeating: 0, count: 120)
        func p16(_ o: Int, _ v: UInt16) { b[o] = UInt8(v & 0xFF); b[o + 1] = UInt8(v >> 8) }
        func p32(_ o: Int, _ v: UInt32) { for i in 0..<4 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
        func p64(_ o: Int, _ v: UInt64) { for i in 0..<8 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
        p32(0, 120); p32(4, 3); p64(8, 0x4020_1000); p32(16, 24)
        p16(24, 2); p16(26, 1); p32(28, 56); p64(40, 4096); p64(48, 1 << 28); p32(36, 0)
        p16(56, 3); p16(58, 1); p32(60, 72); p32(64, 65535)
        p16(72, 1); p16(74, 1); p32(76, 0); p32(80, 2); p64(88, 0); p64(96, 0xfedf_ffff); p64(104, 0xfef0_0000); p64(112, 0x7f_ffff_ffff)
        let info = IOMMUInfo(decoding: b)
        #expect(info.argsz == 120 && info.flags == 3 && info.iovaPgsizes == 0x4020_1000 && info.capOffset == 24)
        #expect(info.caps.map(\.id) == [2, 3, 1])
        #expect(info.caps[0].body == .migration(flags: 0, hole: 0, pgsizeBitmap: 4096, maxDirtyBitmapSize: 1 << 28))
        #expect(info.caps[1].body == .dmaAvail(65535))
        #expect(info.caps[2].body == .iovaRanges([IOVARange(start: 0, end: 0xfedf_ffff), IOVARange(start: 0xfef0_0000, end: 0x7f_ffff_ffff)]))
        p32(76, 24) // a loop back to the first capability
        #expect(IOMMUInfo(decoding: b).caps.count == 3)
    }
}
