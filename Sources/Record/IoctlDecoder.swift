import CVFIO
import Trace
#if canImport(Glibc)
import Glibc
#endif

/// A call seen at syscall entry, waiting for its exit to become an event.
struct PendingCall {
    /// Builds the event from the return value (`-errno` on failure) and the
    /// tracee's memory after the call; nil when there is nothing to record.
    let finish: (_ ret: Int64, _ mem: TraceeMemory) -> EventBody?
}

/// `-errno` or a value, as a recorded result.
func callResult(_ ret: Int64) -> CallResult {
    ret < 0 && ret >= -4095 ? .error(Int32(-ret)) : .ok(ret)
}

/// Decodes VFIO ioctls by (fd kind, request) at entry, and their outcomes at
/// exit. Request numbers collide across fd kinds (117 is DIRTY_PAGES on a
/// container and DEVICE_FEATURE on a device), so the fd decides.
enum IoctlDecoder {
    /// The largest bitmap buffer whose contents are recorded: the kernel
    /// refuses anything larger (256 MiB) before touching it, and the
    /// backends report no contents for it either.
    static let maxBitmap = Int(VFIOUAPI.dirtyBitmapSizeMax)

    /// The caller's bitmap argument: its pointer class and prior contents.
    static func bitmapArg(_ mem: TraceeMemory, pgsize: UInt64, size: UInt64, data: UInt64) -> BitmapArg {
        let ptr = mem.classify(data, length: size)
        var prior: BitmapBytes? = nil
        if (ptr.pointerClass == .valid || ptr.pointerClass == .readOnly) && size <= UInt64(maxBitmap) {
            let p = mem.readBitmap(data, Int(min(size, ptr.accessibleBytes ?? size)))
            if !p.isAllZero { prior = p }
        }
        return BitmapArg(pgsize: pgsize, size: size, data: ptr, prior: prior)
    }

    /// The buffer after the call, as the engine reports it.
    static func bitmapOut(_ mem: TraceeMemory, _ arg: BitmapArg, data: UInt64) -> BitmapBytes? {
        guard arg.data.pointerClass == .valid || arg.data.pointerClass == .readOnly, arg.size <= UInt64(maxBitmap) else { return nil }
        var b = BitmapBytes.Builder()
        let readable = Int(min(arg.size, arg.data.accessibleBytes ?? arg.size))
        let now = mem.readBitmap(data, readable)
        b.append(now)
        if now.count < arg.size {
            // Past the fault: what was there before (the kernel could not write it).
            let rest = arg.prior?.slice(now.count..<arg.size) ?? BitmapBytes(repeating: 0, count: arg.size - now.count)
            b.append(rest)
            if b.count < arg.size { b.append(0, count: arg.size - b.count) }
        }
        return b.build()
    }

    /// Entry of `ioctl(fd, request, arg)` on a VFIO fd of `kind`.
    static func entry(fd: Int32, kind: FDKind, group: UInt32?, request: UInt64, arg: UInt64, mem: TraceeMemory) -> PendingCall {
        switch (kind, request) {
        case (.container, VFIOUAPI.getAPIVersion):
            return PendingCall { r, _ in .getAPIVersion(GetAPIVersion(fd: fd, result: callResult(r))) }
        case (.container, VFIOUAPI.checkExtension):
            return PendingCall { r, _ in .checkExtension(CheckExtension(fd: fd, ext: arg, result: callResult(r))) }
        case (.container, VFIOUAPI.setIOMMU):
            return PendingCall { r, _ in .setIOMMU(SetIOMMU(fd: fd, iommuType: arg, result: callResult(r))) }
        case (.container, VFIOUAPI.iommuGetInfo):
            guard let argsz = mem.u32(arg) else { break }
            return PendingCall { r, m in
                var info: IOMMUInfo? = nil
                if r == 0, let bytes = m.read(arg, min(max(Int(argsz), UAPI.IOMMUInfoLayout.size), 1 << 16)) { info = IOMMUInfo(decoding: bytes) }
                return .getInfo(GetInfo(fd: fd, argsz: argsz, result: callResult(r), info: info))
            }
        case (.container, VFIOUAPI.iommuMapDMA):
            guard let b = mem.read(arg, UAPI.DMAMap.size) else { break }
            let a = UAPI.DMAMap(decoding: b)
            let x = MapDMA(fd: fd, argsz: a.argsz, flags: a.flags, vaddr: mem.classify(a.vaddr, length: a.size),
                           iova: a.iova, size: a.size)
            return PendingCall { r, _ in var y = x; y.result = callResult(r); return .mapDMA(y) }
        case (.container, VFIOUAPI.iommuUnmapDMA):
            guard let b = mem.read(arg, UAPI.DMAUnmap.size) else { break }
            let head = UAPI.DMAUnmap(decoding: b)
            var x = UnmapDMA(fd: fd, argsz: head.argsz, flags: head.flags, iova: head.iova, size: head.size)
            var data: UInt64 = 0
            if x.flags & VFIOUAPI.unmapFlagGetDirtyBitmap != 0 && x.argsz >= UAPI.DMAUnmap.sizeWithBitmap,
               let whole = mem.read(arg, UAPI.DMAUnmap.sizeWithBitmap), let bm = UAPI.DMAUnmap(decoding: whole).bitmap {
                data = bm.data
                x.bitmap = bitmapArg(mem, pgsize: bm.pgsize, size: bm.size, data: data)
            }
            return PendingCall { r, m in
                var y = x
                y.result = callResult(r)
                if r == 0, let after = m.read(arg, UAPI.DMAUnmap.size) { y.sizeOut = UAPI.DMAUnmap.sizeOut(after) }
                if let bmArg = y.bitmap { y.bitmapOut = bitmapOut(m, bmArg, data: data) }
                return .unmapDMA(y)
            }
        case (.container, VFIOUAPI.iommuDirtyPages):
            guard let b = mem.read(arg, UAPI.DirtyBitmap.size) else { break }
            let head = UAPI.DirtyBitmap(decoding: b)
            var x = DirtyPages(fd: fd, argsz: head.argsz, flags: head.flags)
            var data: UInt64 = 0
            if x.flags & VFIOUAPI.dirtyFlagGetBitmap != 0 && x.argsz >= UAPI.DirtyBitmap.sizeWithRange,
               let whole = mem.read(arg, UAPI.DirtyBitmap.sizeWithRange), let g = UAPI.DirtyBitmap(decoding: whole).range {
                data = g.bitmap.data
                x.range = DirtyRange(iova: g.iova, size: g.size,
                                     bitmap: bitmapArg(mem, pgsize: g.bitmap.pgsize, size: g.bitmap.size, data: data))
            }
            return PendingCall { r, m in
                var y = x
                y.result = callResult(r)
                if let range = y.range { y.bitmapOut = bitmapOut(m, range.bitmap, data: data) }
                return .dirtyPages(y)
            }
        case (.group, VFIOUAPI.groupGetStatus):
            guard let argsz = mem.u32(arg) else { break }
            return PendingCall { r, m in
                let after = r == 0 ? m.read(arg, UAPI.GroupStatus.size).map { UAPI.GroupStatus(decoding: $0) } : nil
                return .groupGetStatus(GroupGetStatus(fd: fd, argsz: argsz, result: callResult(r), flagsOut: after?.flags))
            }
        case (.group, VFIOUAPI.groupSetContainer):
            guard let c = mem.u32(arg) else { break }
            let kind = group.map(groupKind) ?? .unknown
            return PendingCall { r, _ in .groupSetContainer(GroupSetContainer(fd: fd, container: Int32(bitPattern: c), kind: kind, result: callResult(r))) }
        case (.group, VFIOUAPI.groupUnsetContainer):
            return PendingCall { r, _ in .groupUnsetContainer(GroupUnsetContainer(fd: fd, result: callResult(r))) }
        case (.group, VFIOUAPI.groupGetDeviceFD):
            guard let name = mem.string(arg, max: 256) else { break }
            return PendingCall { r, _ in .groupGetDeviceFD(GroupGetDeviceFD(fd: fd, name: name, result: callResult(r))) }
        default:
            break
        }
        return raw(fd: fd, kind: kind, request: request, arg: arg, mem: mem)
    }

    /// Anything else on a VFIO fd: the request and, when its number encodes
    /// a size, the argument bytes before and after. The device fd's requests
    /// (and the migration data fd's) are `_IO` numbers without a size whose
    /// argument starts with its `argsz`: `argsz` bytes are kept, so that
    /// DEVICE_FEATURE's migration states, GET_INFO and the rest are exact
    /// in the trace (``DeviceIoctl`` names them).
    static func raw(fd: Int32, kind: FDKind, request: UInt64, arg: UInt64, mem: TraceeMemory) -> PendingCall {
        var size = Int((request >> 16) & 0x3fff)
        let argszSized = (kind == .device && VFIODeviceUAPI.argszRequests.contains(request))
            || (kind == .other && VFIODeviceUAPI.dataFDArgszRequests.contains(request))
        if size == 0, argszSized, let argsz = mem.u32(arg) {
            size = Int(min(argsz, UInt32(VFIODeviceUAPI.maxArgBytes)))
        }
        let argIn = size > 0 ? (mem.read(arg, min(size, 4096)) ?? []) : []
        return PendingCall { r, m in
            .rawIoctl(RawIoctl(fd: fd, fdKind: kind, request: request, argIn: argIn, result: callResult(r),
                               argOut: size > 0 ? m.read(arg, min(size, 4096)) : nil))
        }
    }

    /// A request to the vfiotrace_pin test device (kmod/), recorded as the
    /// kernel-side event it causes: `vfio_pin_pages`, `vfio_unpin_pages` or
    /// `vfio_dma_rw` by a device of `group`, with the kernel's result. (With
    /// other emulated devices those calls happen inside the kernel, and need
    /// the kernel's own tracing to be seen.)
    static func pinDevice(group: UInt32, request: UInt64, arg: UInt64, mem: TraceeMemory) -> PendingCall? {
        guard request == UInt64(cvfio_PIN_IOCTL), let b = mem.read(arg, 32) else { return nil }
        let op = b.le32(at: 0), prot = b.le32(at: 4), iova = b.le64(at: 8), length = b.le64(at: 16)
        func kernelResult(_ m: TraceeMemory) -> CallResult? {
            guard let a = m.read(arg, 32) else { return nil }
            let v = Int64(bitPattern: a.le64(at: 24))
            return v < 0 ? .error(Int32(clamping: -v)) : .ok(v)
        }
        switch op {
        case UInt32(VFIOTRACE_PIN_OP_PIN):
            return PendingCall { r, m in
                .pin(Pin(group: group, iova: iova, npage: UInt32(clamping: length), prot: prot, result: r == 0 ? kernelResult(m) : nil))
            }
        case UInt32(VFIOTRACE_PIN_OP_UNPIN):
            // vfio_unpin_pages returns nothing.
            return PendingCall { _, _ in .unpin(Unpin(group: group, iova: iova, npage: UInt32(clamping: length))) }
        case UInt32(VFIOTRACE_PIN_OP_RW):
            return PendingCall { r, m in
                let k = r == 0 ? kernelResult(m) : nil
                return .dmaRW(DMARW(group: group, iova: iova, length: length, write: prot & 1 != 0,
                                    result: k.map { if case .ok = $0 { return .ok(0) }; return $0 }))
            }
        default:
            return nil
        }
    }

    /// An IOMMU group of mdev devices is emulated; any other is IOMMU-backed.
    static func groupKind(_ n: UInt32) -> GroupKind { IOMMUGroups.kind(ofGroup: String(n)) }
}
