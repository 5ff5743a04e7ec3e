import Trace

/// The container and group layer (`drivers/vfio/container.c`, `group.c`)
/// and type1's attach/detach (`docs/kernel-rules.md#dirty-scope`,
/// `docs/kernel-rules.md#pgsize-bitmap`).
extension BitmapEngine {
    /// `VFIO_CHECK_EXTENSION`: with no IOMMU set every driver is asked with
    /// no state (only type1 is modelled); afterwards only type1 answers.
    func checkExtension(_ c: ContainerState, _ ext: UInt64) -> CallResult {
        let iommu = c.iommu
        switch ext {
        // TYPE1, TYPE1v2 and TYPE1_NESTING (6): type1 claims all three
        // (vfio_iommu_type1_check_extension; NESTING answered 1 by Debian's
        // 6.1 and 6.12, found by vfiotrace fuzz, seed 2).
        case 1, 3, 6: return .ok(1)
        case 9: return .ok(profile.unmapFlagMask & VFIOUAPI.unmapFlagAll != 0 ? 1 : 0)
        case 10:
            guard profile.unmapFlagMask & VFIOUAPI.unmapFlagVAddr != 0 else { return .ok(0) }
            if profile.vaddrGuards { return .ok(iommu != nil && !iommu!.hasEmulatedGroups ? 1 : 0) }
            return .ok(1)
        case 4:
            // DMA_CC (vfio_domains_have_enforce_cache_coherency): 0 without
            // an IOMMU; with one, whether every domain enforces cache
            // coherency: vacuously yes with no domain, else the host's.
            guard let iommu else { return .ok(0) }
            return .ok(!iommu.hasIOMMUDomain || host.domainEnforcesCacheCoherency ? 1 : 0)
        default: return .ok(0)
        }
    }

    /// `VFIO_SET_IOMMU` (`vfio_ioctl_set_iommu`): needs at least one group
    /// and no IOMMU yet; type1 takes TYPE1 (v1), TYPE1v2 and TYPE1_NESTING
    /// (`vfio_iommu_type1_open`: nesting, then as v2), and attaches the
    /// container's groups; the first attach that fails is the answer.
    func setIOMMU(_ c: ContainerState, _ type: UInt64) -> CallResult {
        guard !c.groups.isEmpty, c.iommu == nil else { return .error(.EINVAL) }
        let v2: Bool
        switch type {
        case 1: v2 = false
        case 3, 6: v2 = true
        case 9, 10:
            // type1 answers CHECK_EXTENSION for these, so it is asked to
            // open with them, and refuses.
            return checkExtension(c, type) == .ok(1) ? .error(.EINVAL) : .error(.ENODEV)
        default: return .error(.ENODEV)
        }
        let t = Type1State(v2: v2, pageMask: host.pageMask, dmaEntryLimit: host.dmaEntryLimit)
        t.nesting = type == 6
        for g in c.groups {
            if let e = attach(g, to: t) {
                for a in t.groups { a.attached = false }
                return .error(e)
            }
        }
        c.iommu = t
        return .ok(0)
    }

    /// `vfio_iommu_type1_attach_group`: an emulated group joins with pinned
    /// scope; an IOMMU-backed one gets a domain, maps every existing mapping
    /// into it (`iommu_mapped`), narrows the page sizes and IOVA ranges and
    /// counts as non-pinned. Returns an errno on failure.
    func attach(_ g: GroupState, to t: Type1State) -> LinuxErrno? {
        if profile.vaddrGuards && !t.vaddrInvalid.isEmpty { return .EBUSY }
        guard !t.groups.contains(where: { $0 === g }) else { return .EINVAL }
        if g.isEmulated {
            g.pinnedScope = true
        } else {
            // The domain is put in nesting mode right after it is allocated,
            // before any aperture or reserved-region check.
            if t.nesting && !host.domainSupportsNesting { return profile.nestingRefusalErrno }
            if let e = domainConflict(t) { return e }
            t.iovaRanges = host.domainIOVARanges
            for m in t.mappings.all { m.iommuMapped = true }
            var bitmap = t.pgsizeBitmap & host.domainPgsizeBitmap
            if bitmap & (host.pageSize - 1) != 0 { bitmap = (bitmap & ~(host.pageSize - 1)) | host.pageSize }
            setPgsizeBitmap(bitmap, t)
            g.pinnedScope = false
            t.nonPinnedGroups += 1
        }
        g.attached = true
        t.groups.append(g)
        return nil
    }

    /// Whether an IOMMU domain can join, as `vfio_iommu_type1_attach_group`
    /// checks, in its order:
    /// - `vfio_iommu_aper_conflict`: no mapping below the new aperture's
    ///   start or past its end, measured against the current IOVA list, and
    ///   only when there is one (an emulated-only container has none). When
    ///   the list ends at 2^64-1 (a domain came and went) the "past the
    ///   end" search is `vfio_find_dma(iommu, end + 1, last->end - end)`,
    ///   whose `start + size` wraps to 0: it finds nothing.
    /// - `vfio_iommu_resv_conflict`: no mapping in a reserved region (the
    ///   holes of the host's ranges: VT-d's MSI window): EINVAL.
    /// - `vfio_iommu_replay`: every mapping mapped into the domain; one
    ///   past its address width fails in the IOMMU driver (the host's errno,
    ///   EFAULT for intel-iommu).
    /// Lab probes on 6.1 and 6.12 (`vfiotrace fuzz` seeds 18 and 70).
    func domainConflict(_ t: Type1State) -> LinuxErrno? {
        let ranges = host.domainIOVARanges
        let aperture = host.domainAperture
        if let first = t.iovaRanges.first, let last = t.iovaRanges.last {
            if aperture.lowerBound > first.lowerBound,
               t.mappings.all.contains(where: { $0.iova < aperture.lowerBound && $0.last >= first.lowerBound }) {
                return .EINVAL
            }
            if aperture.upperBound < last.upperBound, last.upperBound != .max,
               t.mappings.all.contains(where: { $0.last > aperture.upperBound && $0.iova <= last.upperBound }) {
                return .EINVAL
            }
        }
        for m in t.mappings.all {
            // A reserved region: a hole between two usable ranges.
            for (a, b) in zip(ranges, ranges.dropFirst()) where a.upperBound &+ 1 < b.lowerBound {
                let hole = (a.upperBound + 1)...(b.lowerBound - 1)
                if m.iova <= hole.upperBound && m.last >= hole.lowerBound { return .EINVAL }
            }
        }
        if t.mappings.all.contains(where: { $0.last > aperture.upperBound || $0.iova < aperture.lowerBound }) {
            return host.domainMapBeyondApertureErrno
        }
        return nil
    }

    /// `vfio_iommu_type1_detach_group`. When the last group goes every
    /// mapping is removed; when the last IOMMU domain goes with emulated
    /// groups left, mappings stay but are no longer `iommu_mapped`. A
    /// non-pinned group leaving while tracking sets every bit of every
    /// mapping from 5.12 and 5.10.24 (`vfio_iommu_populate_bitmap_full`,
    /// d0a78f91761f; ``KernelProfile/populateOnDetach``).
    func detach(_ g: GroupState, from t: Type1State) {
        t.groups.removeAll { $0 === g }
        g.attached = false
        if !g.isEmulated && !t.hasIOMMUDomain {
            if t.groups.isEmpty {
                removeAllMappings(t)
            } else {
                for m in t.mappings.all { m.iommuMapped = false }
            }
            setPgsizeBitmap(host.pageMask, t)
            // vfio_iommu_aper_expand with no domain left: the whole IOVA
            // space, still a list (GET_INFO keeps an IOVA-range capability,
            // 0..2^64-1, on 6.1 and 6.12; before any domain it has none).
            t.iovaRanges = [0...UInt64.max]
        } else if t.groups.isEmpty {
            removeAllMappings(t)
        }
        if !g.pinnedScope && !g.isEmulated {
            t.nonPinnedGroups -= 1
            if profile.populateOnDetach && t.tracking {
                for m in t.mappings.all { m.bitmap?.set(0, count: m.size >> t.pgshift) }
            }
        }
    }

    /// `vfio_update_pgsize_bitmap`. Bitmaps are not reallocated: after a
    /// change while tracking, the kernel reads and writes them at the new
    /// granularity (`docs/kernel-rules.md#pgsize-bitmap`), past their end
    /// when the page shrank.
    func setPgsizeBitmap(_ bitmap: UInt64, _ t: Type1State) {
        let old = t.pgshift
        t.pgsizeBitmap = bitmap
        guard t.tracking, t.pgshift != old else { return }
        for m in t.mappings.all where m.bitmap != nil {
            let n = m.size >> t.pgshift
            if n > m.bitmap!.nbits {
                notes.append(.hazard("page size shrank while tracking: the bitmap of the mapping at 0x\(String(m.iova, radix: 16)) (\(m.bitmap!.nbits) bits) is used for \(n) pages, past its allocation"))
                m.bitmap!.ensureCapacity(bits: n)
            }
        }
    }

    func removeAllMappings(_ t: Type1State) {
        for m in t.mappings.all { freeBitmap(m) }
        t.dmaAvail += UInt32(t.mappings.count)
        t.mappings.removeAll()
        t.vaddrInvalid = []
    }

    // MARK: Group ioctls

    func groupGetStatus(_ x: GroupGetStatus) -> (CallResult, UInt32?) {
        switch fds[x.fd] {
        case nil: return (.error(.EBADF), nil)
        case .group(let g)?:
            guard x.argsz >= 8 else { return (.error(.EINVAL), nil) }
            return (.ok(0), 1 | (g.container != nil ? 2 : 0))
        case _?: return (.error(.ENOTTY), nil)
        }
    }

    /// `VFIO_GROUP_SET_CONTAINER`: EINVAL when the group already has one;
    /// EBADF for a closed fd; a non-container fd is EBADFD from 6.0 (EINVAL
    /// before). With an IOMMU already set the group is attached at once.
    func groupSetContainer(_ x: GroupSetContainer) -> CallResult {
        onGroup(x.fd) { g in
            guard g.container == nil else { return .error(.EINVAL) }
            let c: ContainerState
            switch fds[x.container] {
            case nil: return .error(.EBADF)
            case .container(let found)?: c = found
            case _?: return .error(profile.pinThroughDeviceCallback ? .EBADFD : .EINVAL)
            }
            if g.kind == .unknown || x.kind != .unknown { g.kind = x.kind }
            if let t = c.iommu, let e = attach(g, to: t) { return .error(e) }
            g.container = c
            c.groups.append(g)
            return .ok(0)
        }
    }

    /// `VFIO_GROUP_UNSET_CONTAINER`: EINVAL without a container, EBUSY
    /// while device fds are open. The last group out releases the IOMMU.
    func unsetContainer(_ g: GroupState) -> CallResult {
        guard let c = g.container else { return .error(.EINVAL) }
        guard g.deviceFDs == 0 else { return .error(.EBUSY) }
        if let t = c.iommu, g.attached { detach(g, from: t) }
        c.groups.removeAll { $0 === g }
        g.container = nil
        if c.groups.isEmpty, let t = c.iommu {
            removeAllMappings(t)
            c.iommu = nil
        }
        return .ok(0)
    }

    /// `VFIO_GROUP_GET_DEVICE_FD`: needs the group in a container with an
    /// IOMMU set. Any device name is taken to exist in the group.
    func getDeviceFD(_ g: GroupState, recorded: CallResult?) -> CallResult {
        guard let c = g.container, c.iommu != nil else { return .error(.EINVAL) }
        let fd = allocateFD(recorded: recorded)
        fds[fd] = .device(g)
        g.deviceFDs += 1
        return .ok(Int64(fd))
    }
}
