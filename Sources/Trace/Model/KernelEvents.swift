// MARK: - Kernel-side events

/// `vfio_pin_pages()` by a device of `group` (`docs/kernel-rules.md#pins-and-dma-rw`).
public struct Pin: Equatable, Hashable, Sendable {
    public var group: UInt32
    public var iova: UInt64
    public var npage: UInt32
    /// IOMMU_READ (1) | IOMMU_WRITE (2).
    public var prot: UInt32
    /// `.ok(pages pinned)` or the errno.
    public var result: CallResult?
    public init(group: UInt32, iova: UInt64, npage: UInt32, prot: UInt32 = 3, result: CallResult? = nil) {
        self.group = group
        self.iova = iova
        self.npage = npage
        self.prot = prot
        self.result = result
    }
}

/// `vfio_unpin_pages()`; it never clears dirty bits.
public struct Unpin: Equatable, Hashable, Sendable {
    public var group: UInt32
    public var iova: UInt64
    public var npage: UInt32
    public var result: CallResult?
    public init(group: UInt32, iova: UInt64, npage: UInt32, result: CallResult? = nil) {
        self.group = group
        self.iova = iova
        self.npage = npage
        self.result = result
    }
}

/// `vfio_dma_rw()`: a device read or write of guest memory through the IOMMU.
public struct DMARW: Equatable, Hashable, Sendable {
    public var group: UInt32
    public var iova: UInt64
    public var length: UInt64
    public var write: Bool
    public var result: CallResult?
    public init(group: UInt32, iova: UInt64, length: UInt64, write: Bool, result: CallResult? = nil) {
        self.group = group
        self.iova = iova
        self.length = length
        self.write = write
        self.result = result
    }
}
