import Trace

/// What the engine assumes about the host under the container: the facts a
/// real kernel takes from its IOMMU hardware and its module parameters.
/// Defaults describe an x86_64 host with Intel VT-d (as in the VM lab's QEMU
/// `intel-iommu`); a replay against a recording from another host can
/// override them.
public struct HostModel: Sendable, Hashable {
    /// `PAGE_SIZE`.
    public var pageSize: UInt64 = 4096
    /// `pgsize_bitmap` of an IOMMU domain (VT-d: 4 KiB, 2 MiB, 1 GiB).
    public var domainPgsizeBitmap: UInt64 = 0x4020_1000
    /// The usable IOVA ranges (inclusive) of an IOMMU domain after the
    /// reserved regions are cut out: VT-d's 39-bit aperture minus the MSI
    /// window `0xfee00000..0xfeefffff`. Emulated-only containers have none
    /// (every IOVA is allowed).
    public var domainIOVARanges: [ClosedRange<UInt64>] = [0...0xfed_fffff, 0xfef0_0000...0x7f_ffff_ffff]
    /// Whether an IOMMU domain enforces cache coherency (VT-d with snoop
    /// control): what `CHECK_EXTENSION(VFIO_DMA_CC_IOMMU)` answers once an
    /// IOMMU-backed group is attached. QEMU's emulated VT-d (the lab) does
    /// not: 0 on Debian 6.1 and 6.12 there (found by `vfiotrace fuzz`).
    public var domainEnforcesCacheCoherency = false
    /// What mapping an existing mapping into a new domain fails with when it
    /// lies past the domain's address width: intel-iommu's `-EFAULT`, seen
    /// in `vfio_iommu_replay` on 6.1 and 6.12 (`vfiotrace fuzz`).
    public var domainMapBeyondApertureErrno: LinuxErrno = .EFAULT
    /// Whether an IOMMU domain can be put in nesting mode
    /// (`iommu_enable_nesting`, for a container opened as
    /// `VFIO_TYPE1_NESTING_IOMMU`): ARM SMMUv3 can; intel-iommu cannot, and
    /// attaching an IOMMU-backed group to such a container fails with
    /// EINVAL on Debian 6.1 and 6.12 in the lab (`vfiotrace fuzz`, seed 1053).
    public var domainSupportsNesting = false
    /// The `dma_entry_limit` module parameter (65535).
    public var dmaEntryLimit: UInt32 = 65535
    /// `VFIO_PIN_PAGES_MAX_ENTRIES` (`PAGE_SIZE / sizeof(unsigned long)`).
    public var pinPagesMaxEntries: UInt32 = 512

    public init() {}

    /// The domain's aperture: from the first usable IOVA to the last.
    var domainAperture: ClosedRange<UInt64> {
        (domainIOVARanges.first?.lowerBound ?? 0)...(domainIOVARanges.last?.upperBound ?? .max)
    }

    /// `PAGE_MASK` as a pgsize bitmap: every power of two from PAGE_SIZE up.
    var pageMask: UInt64 { ~(pageSize - 1) }
}
