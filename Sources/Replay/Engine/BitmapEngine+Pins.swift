import Trace

/// Kernel-side events: `vfio_pin_pages`, `vfio_unpin_pages`, `vfio_dma_rw`
/// (`docs/kernel-rules.md#pins-and-dma-rw`).
extension BitmapEngine {
    /// The type1 state a device of group `n` reaches, and whether that
    /// device may pin: it must be open (`vfio_assert_device_open`) and be an
    /// emulated-IOMMU device (only those register `dma_unmap`, 6.0+; before,
    /// the vendor driver's notifier played that part).
    private func pinningContext(_ n: UInt32) -> (GroupState, Type1State)? {
        guard let g = groups[n], g.deviceFDs > 0, g.isEmulated, let t = g.container?.iommu, g.attached else { return nil }
        return (g, t)
    }

    /// `vfio_pin_pages` → `vfio_iommu_type1_pin_pages`. A dirty bit is set
    /// only for a page not already pinned (rule `repop.refcount`,
    /// rule `repop.pinned-every-query`); success promotes the
    /// group to pinned scope.
    func pin(_ x: Pin) -> CallResult {
        guard x.npage > 0 else { return .error(.EINVAL) }
        guard let (g, t) = pinningContext(x.group) else { return .error(.EINVAL) }
        guard x.npage <= host.pinPagesMaxEntries else { return .error(.E2BIG) }
        guard t.v2 else { return .error(.EACCES) }
        if profile.vaddrGuards && !t.vaddrInvalid.isEmpty { return .error(.EBUSY) }
        let page = host.pageSize
        // On an error the pages this call pinned are unpinned again, found
        // anew page by page as the kernel's unwind does; bits stay set.
        func unwind(_ done: UInt64, _ e: LinuxErrno) -> CallResult {
            for j in 0..<done { kernelUnpin(t, x.iova &+ j * page) }
            return .error(e)
        }
        for i in 0..<UInt64(x.npage) {
            let iova = x.iova &+ i * page
            guard let m = t.mappings.kernelFind(iova, iova &+ (page - 1)) else { return unwind(i, .EINVAL) }
            guard m.prot & x.prot == x.prot else { return unwind(i, .EPERM) }
            // An unaligned IOVA whose page starts below the mapping still
            // finds it (vfio_find_dma matches any overlap), and the kernel
            // pins dma->vaddr + (iova - dma->iova): the user page *below*
            // the mapping's memory, which was never mapped for DMA. Whether
            // the process has memory there is not the engine's to know: the
            // recorded outcome says (the lab's 6.1 and 6.12 answer EFAULT
            // when nothing is there, vfiotrace fuzz seed 118, and pin it
            // when something is, seed 100016); without one, EFAULT. While
            // tracking, the kernel then sets bit (iova - dma->iova) >> pgshift
            // as an unsigned int, 0xffffffff: 512 MiB past dma->bitmap
            // (an oops in vfio_iommu_type1_pin_pages on both, when nothing is
            // mapped there; silent corruption when something is).
            if iova < m.iova {
                guard case .ok(let n)? = x.result, n > 0 else { return unwind(i, .EFAULT) }
                if t.tracking { notes.append(.hazard(Self.pinBelowHazard(m))) }
            }
            if m.pinned[iova] == nil {
                guard m.vaddr.pointerClass == .valid || (m.vaddr.pointerClass == .readOnly && x.prot & 2 == 0) else {
                    return unwind(i, .EFAULT)
                }
            }
            if m.addPinReference(iova) && t.tracking && iova >= m.iova { m.bitmap?.setBit((iova - m.iova) >> t.pgshift) }
        }
        for i in 0..<UInt64(x.npage) { g.driverPins[x.iova &+ i * page, default: 0] += 1 }
        if !g.pinnedScope {
            g.pinnedScope = true
            t.nonPinnedGroups -= 1
        }
        return .ok(Int64(x.npage))
    }

    /// What the kernel does with a pin below mapping `m` while tracking.
    static func pinBelowHazard(_ m: DMAMapping) -> String {
        "a page pinned below the mapping at 0x\(String(m.iova, radix: 16)) while tracking: bitmap_set() takes (iova - dma->iova) >> pgshift as an unsigned int, 0xffffffff, and writes 512 MiB past the mapping's dirty bitmap (kernel oops in vfio_iommu_type1_pin_pages on Debian 6.1 and 6.12; silent corruption where memory is there)"
    }

    /// `vfio_unpin_page_external` for one page of a `vfio_unpin_pages`:
    /// the mapping is found anew, `vfio_find_dma(iova, PAGE_SIZE)`, and a
    /// reference is dropped only if that mapping holds the page. A page
    /// overlapping two mappings (an unaligned pin near a mapping's end, the
    /// next mapping made later inside the same page) can be looked for in
    /// the other one and not found: nothing is unpinned, silently, and the
    /// holding mapping keeps it (vfiotrace fuzz's long run on 6.1 and 6.12;
    /// scripts/lab/pin-lost-to-later-mapping).
    /// `found`: the mapping that lookup gives, when the caller made it.
    func kernelUnpin(_ t: Type1State, _ iova: UInt64, found: DMAMapping? = nil) {
        (found ?? t.mappings.kernelFind(iova, iova &+ (host.pageSize - 1)))?.dropPinReference(iova)
    }

    /// The driver's own unpin of `iova`, `count` times: its list forgets
    /// the page, whatever the kernel finds.
    private func driverUnpin(_ g: GroupState, _ t: Type1State, _ iova: UInt64, count: UInt32, found: DMAMapping? = nil) {
        for _ in 0..<count { kernelUnpin(t, iova, found: found) }
        if let held = g.driverPins[iova] { g.driverPins[iova] = held > count ? held - count : nil }
    }

    /// A pinning device closed: its driver's `close_device` unpins every
    /// page it still holds before the kernel forgets the device (the
    /// vfiotrace_pin device does, as a driver must: the container could not
    /// unmap those pages otherwise). In a `record --pins` recording these
    /// unpins follow the close; replayed, they find nothing left to unpin.
    func releasePins(of group: GroupState) {
        defer { group.driverPins.removeAll() }
        guard group.isEmulated, let t = group.container?.iommu else { return }
        for (iova, n) in group.driverPins.sorted(by: { $0.key < $1.key }) { driverUnpin(group, t, iova, count: n) }
    }

    /// `vfio_notify_dma_unmap(iommu, dma->iova, dma->size)` before an
    /// UNMAP removes mapping `m` while it holds pins: every open pinning
    /// device of the container is asked to release what it holds in that
    /// range (its `dma_unmap`), and does, through `vfio_unpin_pages`.
    func notifyDMAUnmap(_ m: DMAMapping, _ t: Type1State) {
        for g in t.groups where g.isEmulated && g.deviceFDs > 0 && !g.driverPins.isEmpty {
            let inRange = g.driverPins.filter { $0.key >= m.iova && $0.key <= m.last }
            for (iova, n) in inRange.sorted(by: { $0.key < $1.key }) { driverUnpin(g, t, iova, count: n) }
        }
    }

    /// `vfio_unpin_pages`: never touches dirty bits. From 6.0 it returns
    /// nothing (no outcome); before, the pages done or EINVAL for none.
    func unpin(_ x: Unpin) -> CallResult? {
        let t = pinningContext(x.group)?.1
        if profile.pinThroughDeviceCallback {
            guard let t, t.v2, x.npage <= host.pinPagesMaxEntries else { return nil }
            _ = unpinPages(t, x)
            return nil
        }
        guard x.npage > 0, let t else { return .error(.EINVAL) }
        guard x.npage <= host.pinPagesMaxEntries else { return .error(.E2BIG) }
        guard t.v2 else { return .error(.EACCES) }
        let n = unpinPages(t, x)
        return n > 0 ? .ok(Int64(n)) : .error(.EINVAL)
    }

    private func unpinPages(_ t: Type1State, _ x: Unpin) -> UInt32 {
        let page = host.pageSize
        let g = groups[x.group]
        for i in 0..<x.npage {
            let iova = x.iova &+ UInt64(i) * page
            guard let m = t.mappings.kernelFind(iova, iova &+ (page - 1)) else { return i }
            if let g { driverUnpin(g, t, iova, count: 1, found: m) } else { kernelUnpin(t, iova, found: m) }
        }
        return x.npage
    }

    /// `vfio_dma_rw` → `vfio_iommu_type1_dma_rw`: chunk by mapping; a
    /// successful write while tracking sets the pages it touched (5.10+) or
    /// `copied >> pgshift` bits (5.8–5.9.1, 2c5af98592f6,
    /// `docs/kernel-rules.md#delta-d4`, rule `repop.dma-rw-span`). Reads set nothing.
    func dmaRW(_ x: DMARW) -> CallResult {
        guard x.length > 0, let g = groups[x.group], g.deviceFDs > 0, let t = g.container?.iommu, g.attached else {
            return .error(.EINVAL)
        }
        if profile.vaddrGuards && !t.vaddrInvalid.isEmpty { return .error(.EBUSY) }
        var iova = x.iova
        var remaining = x.length
        while remaining > 0 {
            guard let m = t.mappings.containing(iova) else { return .error(.EINVAL) }
            if (x.write && m.prot & 2 == 0) || m.prot & 1 == 0 { return .error(.EPERM) }
            let offset = iova - m.iova
            let count = min(remaining, m.size - offset)
            let usable = m.vaddr.pointerClass == .valid || (!x.write && m.vaddr.pointerClass == .readOnly)
            guard usable else { return .error(.EFAULT) }
            if x.write && t.tracking {
                let shift = t.pgshift
                switch profile.dmaRWBits {
                case .pagesTouched:
                    m.bitmap?.set(offset >> shift, count: ((offset + count - 1) >> shift) - (offset >> shift) + 1)
                case .copiedShift:
                    m.bitmap?.set(offset >> shift, count: count >> shift)
                }
            }
            iova &+= count
            remaining -= count
        }
        return .ok(0)
    }
}
