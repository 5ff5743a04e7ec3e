import TestSupport
import Trace

/// Random events of every kind, biased towards the values that break
/// encoders: 0, 2^64-1, 2^31+1 pages, negative fds, huge bitmaps as runs.
struct EventGenerator {
    var rng: SplitMix

    init(seed: UInt64) { rng = SplitMix(seed: seed) }

    mutating func u64() -> UInt64 {
        switch rng.next() % 8 {
        case 0: 0
        case 1: .max
        case 2: (1 << 31 + 1) << 12 // 2^31+1 pages of 4 KiB
        case 3: rng.next() % 4096
        case 4: UInt64(1) << (rng.next() % 64)
        default: rng.next()
        }
    }

    mutating func u32() -> UInt32 { UInt32(truncatingIfNeeded: u64()) }
    mutating func i32() -> Int32 { Int32(truncatingIfNeeded: Int64(bitPattern: rng.next()) % 70000) }
    mutating func bool() -> Bool { rng.next() & 1 == 0 }

    mutating func result() -> CallResult? {
        switch rng.next() % 5 {
        case 0: nil
        case 1: .ok(0)
        case 2: .error(Int32(rng.next() % 134) + 1)
        case 3: .ok(Int64.max)
        default: .ok(Int64(rng.next() % 1000))
        }
    }

    mutating func pointer() -> UserPointer {
        let c = UserPointer.Class.allCases[Int(rng.next() % 5)]
        return UserPointer(c, pageOffset: bool() ? 0 : rng.next() % 4096, accessibleBytes: bool() ? nil : u64())
    }

    mutating func bytes(_ max: Int) -> [UInt8] {
        (0..<Int(rng.next() % UInt64(max + 1))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    mutating func bitmap() -> BitmapBytes? {
        switch rng.next() % 6 {
        case 0: return nil
        case 1: return BitmapBytes(repeating: 0xFF, count: 1 << 28) // 8 TiB all dirty
        case 2: return BitmapBytes(repeating: 0xA5, count: rng.next() % 4096)
        case 3:
            var runs: [Range<UInt64>] = []
            var at = rng.next() % 100
            for _ in 0..<(rng.next() % 20) {
                let len = rng.next() % 300 + 1
                runs.append(at..<(at + len))
                at += len + rng.next() % 200 + 1
            }
            return BitmapBytes(byteCount: (at + 7) / 8 + rng.next() % 64, setBits: runs)
        default:
            return BitmapBytes(bytes(300))
        }
    }

    mutating func bitmapArg() -> BitmapArg {
        BitmapArg(pgsize: bool() ? 4096 : u64(), size: bool() ? 64 : u64(), data: pointer(), prior: bitmap())
    }

    mutating func string() -> String {
        let pieces = ["", "a", "héllo", "quote\"d", "back\\slash", "new\nline", "tab\t", "\u{1}", "0000:00:03.0",
                      "8e8f0b3c-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "#not a comment", "-> ok"]
        return (0..<(rng.next() % 3)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
    }

    mutating func cap() -> InfoCapability {
        let body: InfoCapability.Body = switch rng.next() % 4 {
        case 0: .iovaRanges((0..<(rng.next() % 3)).map { _ in IOVARange(start: u64(), end: u64()) })
        case 1: .migration(flags: u32(), hole: u32(), pgsizeBitmap: u64(), maxDirtyBitmapSize: u64())
        case 2: .dmaAvail(u32())
        default: .raw(bytes(24))
        }
        let id: UInt16 = switch body {
        case .iovaRanges: bool() ? 1 : 2
        case .migration: bool() ? 2 : 1
        case .dmaAvail: 3
        case .raw: UInt16(4 + rng.next() % 100)
        }
        return InfoCapability(id: id, version: UInt16(rng.next() % 3), offset: u32(), next: u32(), body: body)
    }

    mutating func body() -> EventBody {
        switch rng.next() % 19 {
        case 0: return .open(Open(path: bool() ? "/dev/vfio/vfio" : "/dev/vfio/\(rng.next() % 64)", result: result()))
        case 1: return .close(Close(fd: i32(), result: result()))
        case 2: return .getAPIVersion(GetAPIVersion(fd: i32(), result: result()))
        case 3: return .checkExtension(CheckExtension(fd: i32(), ext: u64(), result: result()))
        case 4: return .setIOMMU(SetIOMMU(fd: i32(), iommuType: u64(), result: result()))
        case 5:
            let info: IOMMUInfo? = bool() ? nil : IOMMUInfo(argsz: u32(), flags: u32(), iovaPgsizes: u64(), capOffset: u32(),
                                                            caps: (0..<(rng.next() % 4)).map { _ in cap() })
            return .getInfo(GetInfo(fd: i32(), argsz: u32(), result: result(), info: info))
        case 6: return .mapDMA(MapDMA(fd: i32(), argsz: u32(), flags: u32(), vaddr: pointer(), iova: u64(), size: u64(), result: result()))
        case 7:
            return .unmapDMA(UnmapDMA(fd: i32(), argsz: u32(), flags: u32(), iova: u64(), size: u64(),
                                      bitmap: bool() ? bitmapArg() : nil, result: result(), sizeOut: bool() ? u64() : nil,
                                      bitmapOut: bitmap()))
        case 8:
            let range: DirtyRange? = bool() ? DirtyRange(iova: u64(), size: u64(), bitmap: bitmapArg()) : nil
            return .dirtyPages(DirtyPages(fd: i32(), argsz: u32(), flags: bool() ? UInt32(1 << (rng.next() % 3)) : u32(),
                                          range: range, result: result(), bitmapOut: bitmap()))
        case 9: return .groupGetStatus(GroupGetStatus(fd: i32(), argsz: u32(), result: result(), flagsOut: bool() ? u32() : nil))
        case 10:
            return .groupSetContainer(GroupSetContainer(fd: i32(), container: i32(),
                                                        kind: GroupKind.allCases[Int(rng.next() % 3)], result: result()))
        case 11: return .groupUnsetContainer(GroupUnsetContainer(fd: i32(), result: result()))
        case 12: return .groupGetDeviceFD(GroupGetDeviceFD(fd: i32(), name: string(), result: result()))
        case 13: return .pin(Pin(group: u32(), iova: u64(), npage: u32(), prot: u32(), result: result()))
        case 14: return .unpin(Unpin(group: u32(), iova: u64(), npage: u32(), result: result()))
        case 15: return .dmaRW(DMARW(group: u32(), iova: u64(), length: u64(), write: bool(), result: result()))
        case 16:
            return .rawIoctl(RawIoctl(fd: i32(), fdKind: FDKind.allCases[Int(rng.next() % 4)], request: u64(),
                                      argIn: bytes(40), result: result(), argOut: bool() ? bytes(40) : nil))
        case 17: return .marker(Marker(string()))
        default: return .loss(Loss(count: u64(), reason: string()))
        }
    }

    /// A stream with increasing sequence numbers (sometimes with gaps),
    /// non-decreasing-ish times and a few threads.
    mutating func stream(_ n: Int) -> [Event] {
        var seq: UInt64 = rng.next() % 3 == 0 ? 0 : rng.next() % 1000
        var time: UInt64 = rng.next() % 10_000_000_000
        var out: [Event] = []
        let tids: [UInt32] = [0, 1234, UInt32.max, 77]
        for _ in 0..<n {
            out.append(Event(seq: seq, time: time, tid: tids[Int(rng.next() % 4)], body()))
            seq += rng.next() % 10 == 0 ? rng.next() % 5 + 1 : 1
            time = rng.next() % 20 == 0 ? rng.next() : time &+ rng.next() % 100_000
        }
        return out
    }
}
