import Trace

/// The kernel behaviours the bitmap engine can switch between, each a named
/// decision that changed across kernel versions (`docs/kernel-rules.md#version-deltas`).
/// A preset is the set of decisions of one kernel line; `auto` picks a preset
/// from a trace header's kernel release.
///
/// Every switch says which commit or version changed it, so that a
/// difference between two profiles reads as a kernel change, not an accident.
public struct KernelProfile: Sendable, Hashable, CustomStringConvertible {
    /// The preset's name (`v16`, `5.8`, … `latest`), or a custom name.
    public var name: String
    /// One line on what this profile stands for.
    public var summary: String
    /// The kernel line whose behaviour this is: `auto` picks the newest
    /// released preset not newer than a trace's kernel, and catalogue
    /// selectors (`5.12+`) order profiles by it. The seed's v16 stands
    /// before 5.8 (posted against 5.6/5.7).
    public var kernel: KernelVersion
    /// Whether a released kernel behaves like this (`auto` may pick it);
    /// false for the seed's v16 patch, which never merged.
    public var released = true

    /// `VFIO_IOMMU_DIRTY_PAGES` exists (5.8, d6a4c185660c). Without it the
    /// ioctl is ENOTTY and `GET_DIRTY_BITMAP` is an unknown unmap flag (`docs/kernel-rules.md#delta-d1`).
    public var hasDirtyTracking: Bool

    /// Which ranges GET_BITMAP and UNMAP+bitmap accept (`docs/kernel-rules.md#delta-d12`).
    public enum QueryRangeRule: String, Sendable, Hashable {
        /// The seed's v16 patch: the range must be exactly one `vfio_dma`; the
        /// mapping's bitmap is copied to the start of the buffer unshifted.
        case exactSingleMapping = "exact-single-mapping"
        /// 5.8 as merged: any span of whole mappings, with holes; a range that
        /// bisects a mapping is EINVAL; bits are shifted to each mapping's
        /// offset from the range start (`update_user_bitmap`).
        case wholeMappingSpan = "whole-mapping-span"
    }
    public var queryRange: QueryRangeRule

    /// `DIRTY_BITMAP_PAGES_MAX`: `INT_MAX - 1` in v16, `INT_MAX` from 5.8.
    /// A mapping with more pages cannot have a bitmap (START and MAP fail).
    public var pagesMax: UInt64

    /// How many bits a successful `vfio_dma_rw()` write sets (`docs/kernel-rules.md#delta-d4`).
    public enum DMARWBitCount: String, Sendable, Hashable {
        /// 5.8–5.9.1: `copied >> pgshift` bits from `offset >> pgshift`; a
        /// sub-page write sets none and an unaligned one misses its last page.
        case copiedShift = "copied-shift"
        /// 5.10+ (2c5af98592f6, stable 5.9.2): every page the write touched.
        case pagesTouched = "pages-touched"
    }
    public var dmaRWBits: DMARWBitCount

    /// What makes a query report a mapping all-dirty (`docs/kernel-rules.md#dirty-scope`,
    /// `docs/kernel-rules.md#delta-d5`).
    public enum DirtyScopeModel: String, Sendable, Hashable {
        /// v16 4/7: every `iommu_mapped` mapping, whatever the groups did.
        case everyIOMMUMapped = "iommu-mapped"
        /// 5.8–5.11: `iommu->pinned_page_dirty_scope`, recomputed from the
        /// groups; a detach can promote the scope and lose the all-dirty
        /// information of mapped pages (unless ``populateOnDetach``, which
        /// 5.10 stable has).
        case pinnedScopeFlag = "pinned-scope-flag"
        /// 5.12+ (010321565a7d): the counter `num_non_pinned_groups`, with
        /// ``populateOnDetach`` (d0a78f91761f).
        case nonPinnedGroupCount = "non-pinned-group-count"
    }
    public var scope: DirtyScopeModel

    /// The errno of `DIRTY_PAGES` with `flags == 0`. 5.8 falls through to the
    /// ioctl's ENOTTY when `__ffs(0) == __fls(0)` happens to hold (CPU
    /// dependent; x86 gives ENOTTY in practice); 5.9+ returns EINVAL
    /// (ccd59dce1a21, `docs/kernel-rules.md#delta-d3`).
    public var flagsZeroErrno: LinuxErrno

    /// Flags UNMAP_DMA accepts: GET_DIRTY_BITMAP only until 5.11, plus ALL and
    /// VADDR from 5.12 (`docs/kernel-rules.md#delta-d6`); GET_DIRTY_BITMAP with ALL or VADDR is EINVAL.
    public var unmapFlagMask: UInt32
    /// Flags MAP_DMA accepts: READ|WRITE, plus VADDR from 5.12.
    public var mapFlagMask: UInt32

    /// UNMAP with GET_DIRTY_BITMAP while tracking is off: v16 unmapped and
    /// silently skipped the bitmap; 5.8 returns EINVAL.
    public var unmapBitmapRequiresTracking: Bool

    /// The migration capability's id: 2 (1 in 5.8-rc1/rc2, colliding with
    /// IOVA_RANGE, `docs/kernel-rules.md#delta-d2`).
    public var migrationCapID: UInt16
    /// The capability's bytes 12..15 are zeroed (cd24e2a60af6, 6.6 and
    /// stable, `docs/kernel-rules.md#delta-d8`); before, they are kernel
    /// stack and must not be compared.
    public var migrationCapHoleZeroed: Bool
    /// Capabilities are 8-byte aligned and `info` has the explicit pad
    /// (a881b496941f, 6.6, `docs/kernel-rules.md#delta-d9`).
    public var alignedCapabilities: Bool
    /// The DMA_AVAIL capability exists (5.10).
    public var dmaAvailCap: Bool

    /// Pins and `dma_rw` come through a device callback API that checks the
    /// device is open and registered (6.0, "vfio: Replace the DMA unmapping
    /// notifier with a callback", `docs/kernel-rules.md#delta-d11`); `vfio_unpin_pages` returns nothing.
    /// Before, a registered notifier was needed and unpin returned a count.
    public var pinThroughDeviceCallback: Bool

    /// The 6.x guards around invalidated vaddrs (UNMAP with VADDR): UNMAP
    /// VADDR while emulated groups are attached is EBUSY, pins and `dma_rw`
    /// are EBUSY while any vaddr is invalid, and CHECK_EXTENSION
    /// UPDATE_VADDR answers 0 with emulated groups (5.12 blocked instead,
    /// then 6.x reverted that to these errors).
    public var vaddrGuards: Bool

    /// Dirty bitmaps are freed with `kvfree` (2bed2ced40c9, 5.17, `docs/kernel-rules.md#delta-d7`). Before,
    /// `kfree` of a vmalloc'd bitmap (larger than 4 MiB, i.e. a mapping over
    /// 128 GiB at 4 KiB) corrupts the host: the engine reports a hazard.
    public var bitmapFreeIsKVFree: Bool

    /// UNMAP finds each next mapping with `vfio_find_dma`, from the root of
    /// the mappings' red-black tree, so it visits them in tree order (and a
    /// later mapping's whole-word bitmap write can wipe an earlier one's
    /// bits); ascending IOVA order from 5.12 (40ae9b807b89, "vfio/type1:
    /// massage unmap iteration", `docs/kernel-rules.md#unmap-order`). Seen on Debian's 5.10.223.
    public var unmapInTreeOrder = false

    /// Detaching a non-pinned (IOMMU-backed) group while tracking sets
    /// every bit of every mapping once (`vfio_iommu_populate_bitmap_full`,
    /// d0a78f91761f, rule `scope.detach-populates`). Mainline from 5.12;
    /// also in 5.10 stable from 5.10.24 (with 4a19f37a3dd3, without the
    /// counter 010321565a7d), which Debian's 5.10.223 showed in the lab with
    /// the test device: the 5.10 profile has it, 5.8 and v16 do not.
    public var populateOnDetach = false

    /// What attaching an IOMMU-backed group to a `VFIO_TYPE1_NESTING_IOMMU`
    /// container fails with when the domain cannot nest (intel-iommu, the
    /// lab's host; ``HostModel/domainSupportsNesting``). Through 5.12 type1
    /// asks `iommu_domain_set_attr(DOMAIN_ATTR_NESTING)`, which intel-iommu
    /// refuses with ENODEV (Debian's 5.10.223 in the lab,
    /// `corpora/fuzz/set-iommu-nesting-5.10.vfs`); from 5.13 it asks
    /// `iommu_enable_nesting` ("iommu: remove DOMAIN_ATTR_NESTING"), which
    /// is EINVAL for a driver without the op (6.1 and 6.12 in the lab).
    public var nestingRefusalErrno: LinuxErrno = .ENODEV


    public var description: String { name }

    // MARK: Presets

    /// The seed: "[PATCH v16 Kernel 4/7]" and "5/7" (March 2020), never released.
    public static let v16 = KernelProfile(
        name: "v16", summary: "the seed's v16 patch: exact single-mapping queries, INT_MAX-1 pages",
        kernel: KernelVersion(5, 7), released: false, hasDirtyTracking: true, queryRange: .exactSingleMapping, pagesMax: UInt64(Int32.max) - 1,
        dmaRWBits: .copiedShift, scope: .everyIOMMUMapped, flagsZeroErrno: .ENOTTY,
        unmapFlagMask: 1, mapFlagMask: 3, unmapBitmapRequiresTracking: false,
        migrationCapID: 2, migrationCapHoleZeroed: false, alignedCapabilities: false, dmaAvailCap: false,
        pinThroughDeviceCallback: false, vaddrGuards: false, bitmapFreeIsKVFree: false, unmapInTreeOrder: true)

    /// Linux 5.8 as released: multi-mapping queries, the dma_rw undercount,
    /// the bool dirty scope, flags==0 ENOTTY.
    public static let v5_8 = KernelProfile(
        name: "5.8", summary: "Linux 5.8: merged series, dma_rw undercount, bool scope, flags=0 ENOTTY",
        kernel: KernelVersion(5, 8), hasDirtyTracking: true, queryRange: .wholeMappingSpan, pagesMax: UInt64(Int32.max),
        dmaRWBits: .copiedShift, scope: .pinnedScopeFlag, flagsZeroErrno: .ENOTTY,
        unmapFlagMask: 1, mapFlagMask: 3, unmapBitmapRequiresTracking: true,
        migrationCapID: 2, migrationCapHoleZeroed: false, alignedCapabilities: false, dmaAvailCap: false,
        pinThroughDeviceCallback: false, vaddrGuards: false, bitmapFreeIsKVFree: false, unmapInTreeOrder: true)

    /// Linux 5.10 as stable ships it (5.10.24+, Debian's 5.10.223): dma_rw
    /// counts every touched page, DMA_AVAIL, flags==0 EINVAL, and
    /// populate-on-detach backported from 5.12.
    public static let v5_10 = v5_8.with(name: "5.10", kernel: KernelVersion(5, 10), summary: "Linux 5.10 stable: dma_rw fix, DMA_AVAIL cap, flags=0 EINVAL, populate on detach") {
        $0.dmaRWBits = .pagesTouched
        $0.flagsZeroErrno = .EINVAL
        $0.dmaAvailCap = true
        $0.populateOnDetach = true
    }

    /// Linux 5.12: the non-pinned group counter (populate-on-detach is
    /// 5.10's already), UNMAP ALL and VADDR.
    public static let v5_12 = v5_10.with(name: "5.12", kernel: KernelVersion(5, 12), summary: "Linux 5.12: scope counter, unmap ALL/VADDR") {
        $0.scope = .nonPinnedGroupCount
        $0.unmapFlagMask = 7
        $0.mapFlagMask = 7
        $0.unmapInTreeOrder = false
    }

    /// Linux 5.17: bitmaps freed with kvfree.
    public static let v5_17 = v5_12.with(name: "5.17", kernel: KernelVersion(5, 17), summary: "Linux 5.17: kvfree of bitmaps (no host crash on huge mappings)") {
        $0.bitmapFreeIsKVFree = true
        // 5.13: iommu_enable_nesting replaced DOMAIN_ATTR_NESTING.
        $0.nestingRefusalErrno = .EINVAL
    }

    /// Linux 6.0–6.5: the pin API through device callbacks and the vaddr
    /// guards. Debian's 6.1 carries the stable backport of cd24e2a60af6
    /// (zeroed capability hole) but not a881b496941f (alignment); the hole
    /// is compared only when zeroed, so this preset matches it (checked on
    /// the real 6.1 in the lab).
    public static let v6_0 = v5_17.with(name: "6.0", kernel: KernelVersion(6, 0), summary: "Linux 6.0–6.5: device-callback pin API") {
        $0.pinThroughDeviceCallback = true
        $0.vaddrGuards = true
    }

    /// Linux 6.6: zeroed and aligned capabilities.
    public static let v6_6 = v6_0.with(name: "6.6", kernel: KernelVersion(6, 6), summary: "Linux 6.6: device-callback pin API (6.0), zeroed and aligned caps") {
        $0.migrationCapHoleZeroed = true
        $0.alignedCapabilities = true
    }

    /// The newest source (6.16+: the alloc_all unwind fix, which only
    /// changes kernel memory, not what userspace sees).
    public static let latest = v6_6.with(name: "latest", kernel: KernelVersion(6, 16), summary: "newest source (6.16+)") { _ in }

    /// Every preset, oldest first.
    public static let presets: [KernelProfile] = [v16, v5_8, v5_10, v5_12, v5_17, v6_0, v6_6, latest]

    /// The preset called `name`, or nil.
    public static func preset(named name: String) -> KernelProfile? {
        presets.first { $0.name == name }
    }

    /// The preset for a kernel release string such as `6.1.0-27-amd64`: the
    /// newest released preset not newer than it. Nil when the release does
    /// not parse or predates 5.8 (no dirty tracking at all).
    public static func forKernelRelease(_ release: String) -> KernelProfile? {
        KernelVersion(release: release).flatMap(forKernel)
    }

    /// The newest released preset whose kernel is not newer than `version`.
    public static func forKernel(_ version: KernelVersion) -> KernelProfile? {
        presets.last { $0.released && $0.kernel <= version }
    }

    /// A copy with another name and some switches changed.
    public func with(name: String, kernel: KernelVersion, summary: String,
                     _ change: (inout KernelProfile) -> Void) -> KernelProfile {
        var p = self
        p.name = name
        p.kernel = kernel
        p.released = true
        p.summary = summary
        change(&p)
        return p
    }

    /// The switches as `name=value` lines, for `vfiotrace profiles` and for
    /// showing what differs between two profiles.
    public var switches: [(name: String, value: String)] {
        [
            ("dirty-tracking", hasDirtyTracking ? "yes" : "no"),
            ("query-range", queryRange.rawValue),
            ("pages-max", String(pagesMax)),
            ("dma-rw-bits", dmaRWBits.rawValue),
            ("dirty-scope", scope.rawValue),
            ("flags-zero-errno", flagsZeroErrno.description),
            ("unmap-flags", "0x" + String(unmapFlagMask, radix: 16)),
            ("map-flags", "0x" + String(mapFlagMask, radix: 16)),
            ("unmap-bitmap-needs-tracking", unmapBitmapRequiresTracking ? "yes" : "no"),
            ("migration-cap-id", String(migrationCapID)),
            ("migration-cap-hole-zeroed", migrationCapHoleZeroed ? "yes" : "no"),
            ("aligned-caps", alignedCapabilities ? "yes" : "no"),
            ("dma-avail-cap", dmaAvailCap ? "yes" : "no"),
            ("pin-device-callback", pinThroughDeviceCallback ? "yes" : "no"),
            ("vaddr-guards", vaddrGuards ? "yes" : "no"),
            ("bitmap-kvfree", bitmapFreeIsKVFree ? "yes" : "no"),
            ("unmap-order", unmapInTreeOrder ? "tree" : "iova"),
            ("populate-on-detach", populateOnDetach ? "yes" : "no"),
            ("nesting-refusal-errno", nestingRefusalErrno.description),
        ]
    }

    /// This profile with one switch (named as in ``switches``) taken from
    /// `other`; nil for a name it does not know.
    public func adopting(_ name: String, from other: KernelProfile) -> KernelProfile? {
        var p = self
        switch name {
        case "dirty-tracking": p.hasDirtyTracking = other.hasDirtyTracking
        case "query-range": p.queryRange = other.queryRange
        case "pages-max": p.pagesMax = other.pagesMax
        case "dma-rw-bits": p.dmaRWBits = other.dmaRWBits
        case "dirty-scope": p.scope = other.scope
        case "flags-zero-errno": p.flagsZeroErrno = other.flagsZeroErrno
        case "unmap-flags": p.unmapFlagMask = other.unmapFlagMask
        case "map-flags": p.mapFlagMask = other.mapFlagMask
        case "unmap-bitmap-needs-tracking": p.unmapBitmapRequiresTracking = other.unmapBitmapRequiresTracking
        case "migration-cap-id": p.migrationCapID = other.migrationCapID
        case "migration-cap-hole-zeroed": p.migrationCapHoleZeroed = other.migrationCapHoleZeroed
        case "aligned-caps": p.alignedCapabilities = other.alignedCapabilities
        case "dma-avail-cap": p.dmaAvailCap = other.dmaAvailCap
        case "pin-device-callback": p.pinThroughDeviceCallback = other.pinThroughDeviceCallback
        case "vaddr-guards": p.vaddrGuards = other.vaddrGuards
        case "bitmap-kvfree": p.bitmapFreeIsKVFree = other.bitmapFreeIsKVFree
        case "unmap-order": p.unmapInTreeOrder = other.unmapInTreeOrder
        case "populate-on-detach": p.populateOnDetach = other.populateOnDetach
        case "nesting-refusal-errno": p.nestingRefusalErrno = other.nestingRefusalErrno
        default: return nil
        }
        return p
    }
}
