import Trace

/// What DIRTY_PAGES returns and writes back.
struct DirtyPagesOutcome {
    var result: CallResult?
    /// The bitmap buffer, when the call reached it.
    var bitmapOut: BitmapBytes?
}

/// `VFIO_IOMMU_DIRTY_PAGES`: START, STOP and GET_BITMAP
/// (`vfio_iommu_type1_dirty_pages`, `docs/kernel-rules.md#dirty-pages-ioctl`).
extension BitmapEngine {
    func dirtyPages(_ t: Type1State, _ x: DirtyPages) -> DirtyPagesOutcome {
        func fail(_ e: LinuxErrno) -> DirtyPagesOutcome { DirtyPagesOutcome(result: .error(e)) }
        guard profile.hasDirtyTracking else { return fail(.ENOTTY) }
        guard t.v2 else { return fail(.EACCES) }
        guard x.argsz >= VFIOUAPI.dirtyBitmapMinSize, x.flags & ~7 == 0 else { return fail(.EINVAL) }
        if x.flags == 0 { return fail(profile.flagsZeroErrno) }
        guard x.flags.nonzeroBitCount == 1 else { return fail(.EINVAL) }
        switch x.flags {
        case VFIOUAPI.dirtyFlagStart:
            return DirtyPagesOutcome(result: start(t))
        case VFIOUAPI.dirtyFlagStop:
            if t.tracking {
                t.tracking = false
                for m in t.mappings.all { freeBitmap(m) }
            }
            return DirtyPagesOutcome(result: .ok(0))
        default:
            return getBitmap(t, x)
        }
    }

    /// START: `vfio_dma_bitmap_alloc_all`, then seed each bitmap with the
    /// pinned pages. Already tracking: 0, bitmaps kept (rule `repop.start-twice-keeps`).
    /// A failure frees what was allocated and leaves tracking off
    /// (rule `size.start-int-max`; `docs/kernel-rules.md#bitmap-allocation`).
    func start(_ t: Type1State) -> CallResult {
        guard !t.tracking else { return .ok(0) }
        for m in t.mappings.all {
            if let e = allocateBitmap(m, t) {
                for a in t.mappings.all where a.bitmap != nil { freeBitmapQuietly(a) }
                return .error(e)
            }
            if m.populate(pgshift: t.pgshift) { notes.append(.hazard(Self.pinBelowHazard(m))) }
        }
        t.tracking = true
        return .ok(0)
    }

    /// Frees a bitmap on the unwind of a failed START. Before 6.16 the
    /// unwind freed the wrong entry and leaked the rest (4518e5a60c7f); the
    /// user sees the same error either way, so the engine frees them all.
    private func freeBitmapQuietly(_ m: DMAMapping) {
        guard let b = m.bitmap else { return }
        bitmapBytes -= kernelBitmapBytes(b.nbits)
        m.bitmap = nil
    }

    /// GET_BITMAP: argument checks G1–G9 (`docs/kernel-rules.md#dirty-pages-ioctl`),
    /// then `vfio_iova_dirty_bitmap` (`docs/kernel-rules.md#query-range`).
    func getBitmap(_ t: Type1State, _ x: DirtyPages) -> DirtyPagesOutcome {
        func fail(_ e: LinuxErrno) -> DirtyPagesOutcome { DirtyPagesOutcome(result: .error(e)) }
        guard x.argsz - VFIOUAPI.dirtyBitmapMinSize >= VFIOUAPI.dirtyBitmapGetSize else { return fail(.EINVAL) }
        guard let r = x.range else { return fail(.EFAULT) }
        // G3: a range that wraps, including one ending exactly at 2^64.
        guard !r.iova.addingReportingOverflow(r.size).overflow else { return fail(.EINVAL) }
        // G4: access_ok fails only for kernel addresses (or a size that
        // runs past the user range, which G5 also rejects).
        guard r.bitmap.data.pointerClass != .kernel else { return fail(.EINVAL) }
        let callerShift = UInt64(r.bitmap.pgsize.trailingZeroBitCount & 63)
        guard VFIOLimits.bitmapSizeIsValid(npages: r.size >> callerShift, size: r.bitmap.size) else { return fail(.EINVAL) }
        let pgsize = t.pgsize
        guard r.bitmap.pgsize == pgsize else { return fail(.EINVAL) }
        guard r.iova & (pgsize - 1) == 0 else { return fail(.EINVAL) }
        guard r.size != 0, r.size & (pgsize - 1) == 0 else { return fail(.EINVAL) }
        guard t.tracking else { return fail(.EINVAL) }

        let last = r.iova + r.size - 1
        let inRange: ArraySlice<DMAMapping>
        switch profile.queryRange {
        case .exactSingleMapping:
            guard let m = t.mappings.containing(r.iova), m.iova == r.iova, m.size == r.size else { return fail(.EINVAL) }
            inRange = [m]
        case .wholeMappingSpan:
            if let m = t.mappings.containing(r.iova), m.iova != r.iova { return fail(.EINVAL) }
            if let m = t.mappings.containing(last), m.last != last { return fail(.EINVAL) }
            inRange = t.mappings.starting(in: r.iova, last)
        }
        // No mapping in range: nothing is copied, even through NULL (rule `ioctl.get-empty-range`).
        guard !inRange.isEmpty else { return DirtyPagesOutcome(result: .ok(0)) }
        var buffer = UserBitmapBuffer(size: r.bitmap.size, prior: r.bitmap.prior, pointer: r.bitmap.data)
        for m in inRange {
            guard writeUserBitmap(m, t, base: r.iova, into: &buffer) else {
                // Mappings already reported have been cleared (rule `bitmap.fault-part-way`).
                return DirtyPagesOutcome(result: .error(.EFAULT), bitmapOut: readableContents(buffer, r.bitmap))
            }
            // Clear on read, then re-mark the pages still pinned.
            m.bitmap!.clear(0, count: m.size >> t.pgshift)
            if m.populate(pgshift: t.pgshift) { notes.append(.hazard(Self.pinBelowHazard(m))) }
        }
        return DirtyPagesOutcome(result: .ok(0), bitmapOut: readableContents(buffer, r.bitmap))
    }

    /// The buffer's contents when there is a buffer to read back.
    func readableContents(_ buffer: UserBitmapBuffer, _ arg: BitmapArg) -> BitmapBytes? {
        arg.data.pointerClass == .valid || arg.data.pointerClass == .readOnly ? buffer.contents : nil
    }
}
