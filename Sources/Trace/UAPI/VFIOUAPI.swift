/// Numbers from the kernel's `include/uapi/linux/vfio.h`, as vfiotrace needs
/// them to name things in traces. Every VFIO ioctl is `_IO(';', 100 + n)`:
/// the number carries no size or direction, and the same number means
/// different things on different fds (117 is DIRTY_PAGES on a type1
/// container and DEVICE_FEATURE on a device fd), so decoding keys on the fd
/// kind as well (`docs/kernel-rules.md#uapi-ioctl-numbers`). Tests check these against the header.
public enum VFIOUAPI {
    public static let type: UInt64 = 0x3B // ';'
    public static let base: UInt64 = 100

    /// `_IO(VFIO_TYPE, VFIO_BASE + n)`.
    public static func request(_ n: UInt64) -> UInt64 { (type << 8) | (base + n) }

    public static let getAPIVersion = request(0)
    public static let checkExtension = request(1)
    public static let setIOMMU = request(2)
    public static let groupGetStatus = request(3)
    public static let groupSetContainer = request(4)
    public static let groupUnsetContainer = request(5)
    public static let groupGetDeviceFD = request(6)
    public static let iommuGetInfo = request(12)
    public static let iommuMapDMA = request(13)
    public static let iommuUnmapDMA = request(14)
    public static let iommuDirtyPages = request(17)

    /// Struct sizes the argsz checks use (the layouts are in ``UAPI``).
    public static let dmaMapSize = UInt32(UAPI.DMAMap.size)
    public static let dmaUnmapMinSize = UInt32(UAPI.DMAUnmap.size)
    public static let bitmapSize = UInt32(UAPI.Bitmap.size)
    public static let dirtyBitmapMinSize = UInt32(UAPI.DirtyBitmap.size)
    public static let dirtyBitmapGetSize = UInt32(UAPI.DirtyBitmap.Range.size)
    public static let iommuInfoSize = UInt32(UAPI.IOMMUInfoLayout.size)

    /// Extension ids for `VFIO_CHECK_EXTENSION` / types for `VFIO_SET_IOMMU`.
    public static let extensionNames: [(UInt64, String)] = [
        (1, "TYPE1"), (2, "SPAPR_TCE"), (3, "TYPE1v2"), (4, "DMA_CC"), (5, "EEH"),
        (6, "TYPE1_NESTING"), (7, "SPAPR_TCE_v2"), (8, "NOIOMMU"), (9, "UNMAP_ALL"),
        (10, "UPDATE_VADDR"),
    ]

    public static let mapFlags: [(UInt32, String)] = [(1, "READ"), (2, "WRITE"), (4, "VADDR")]
    public static let unmapFlags: [(UInt32, String)] = [(1, "GET_DIRTY_BITMAP"), (2, "ALL"), (4, "VADDR")]
    public static let dirtyFlags: [(UInt32, String)] = [(1, "START"), (2, "STOP"), (4, "GET_BITMAP")]
    public static let infoFlags: [(UInt32, String)] = [(1, "PGSIZES"), (2, "CAPS")]
    public static let groupStatusFlags: [(UInt32, String)] = [(1, "VIABLE"), (2, "CONTAINER_SET")]
    public static let pinProt: [(UInt32, String)] = [(1, "READ"), (2, "WRITE")]

    public static let mapFlagRead: UInt32 = 1
    public static let mapFlagWrite: UInt32 = 2
    public static let mapFlagVAddr: UInt32 = 4
    public static let unmapFlagGetDirtyBitmap: UInt32 = 1
    public static let unmapFlagAll: UInt32 = 2
    public static let unmapFlagVAddr: UInt32 = 4
    public static let dirtyFlagStart: UInt32 = 1
    public static let dirtyFlagStop: UInt32 = 2
    public static let dirtyFlagGetBitmap: UInt32 = 4

    /// Capability ids in the `VFIO_IOMMU_GET_INFO` chain.
    public static let capIOVARange: UInt16 = 1
    public static let capMigration: UInt16 = 2
    public static let capDMAAvail: UInt16 = 3

    /// `DIRTY_BITMAP_SIZE_MAX`: the largest bitmap the kernel accepts, 256 MiB.
    public static let dirtyBitmapSizeMax: UInt64 = 1 << 28
}
