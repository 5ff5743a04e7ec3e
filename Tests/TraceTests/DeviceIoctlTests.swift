import CVFIO
import Testing
import Trace

/// The device fd's and the migration data fd's ioctls: numbers agree with
/// <linux/vfio.h>, the kept argument bytes decode to what they say, and the
/// text form names them in a comment without changing a byte.
@Suite("Device-fd ioctls by name")
struct DeviceIoctlTests {
    @Test("request numbers, feature flags and layouts match <linux/vfio.h>")
    func header() {
        #expect(VFIODeviceUAPI.getInfo == UInt64(cvfio_DEVICE_GET_INFO))
        #expect(VFIODeviceUAPI.getRegionInfo == UInt64(cvfio_DEVICE_GET_REGION_INFO))
        #expect(VFIODeviceUAPI.getIRQInfo == UInt64(cvfio_DEVICE_GET_IRQ_INFO))
        #expect(VFIODeviceUAPI.setIRQs == UInt64(cvfio_DEVICE_SET_IRQS))
        #expect(VFIODeviceUAPI.reset == UInt64(cvfio_DEVICE_RESET))
        #expect(VFIODeviceUAPI.getPCIHotResetInfo == UInt64(cvfio_DEVICE_GET_PCI_HOT_RESET_INFO))
        #expect(VFIODeviceUAPI.pciHotReset == UInt64(cvfio_DEVICE_PCI_HOT_RESET))
        #expect(VFIODeviceUAPI.queryGfxPlane == UInt64(cvfio_DEVICE_QUERY_GFX_PLANE))
        #expect(VFIODeviceUAPI.ioeventfd == UInt64(cvfio_DEVICE_IOEVENTFD))
        #expect(VFIODeviceUAPI.feature == UInt64(cvfio_DEVICE_FEATURE))
        #expect(VFIODeviceUAPI.feature == VFIOUAPI.iommuDirtyPages, "one number, two meanings: the fd decides")
        if cvfio_MIG_GET_PRECOPY_INFO != 0 { #expect(VFIODeviceUAPI.migGetPrecopyInfo == UInt64(cvfio_MIG_GET_PRECOPY_INFO)) }
        #expect(VFIODeviceUAPI.migGetPrecopyInfo == 0x3B79)
        #expect(VFIODeviceUAPI.featureMask == cvfio_DEVICE_FEATURE_MASK)
        #expect(VFIODeviceUAPI.featureGet == cvfio_DEVICE_FEATURE_GET)
        #expect(VFIODeviceUAPI.featureSet == cvfio_DEVICE_FEATURE_SET)
        #expect(VFIODeviceUAPI.featureProbe == cvfio_DEVICE_FEATURE_PROBE)
        #expect(VFIODeviceUAPI.featureMigration == cvfio_DEVICE_FEATURE_MIGRATION)
        #expect(VFIODeviceUAPI.featureMigDeviceState == cvfio_DEVICE_FEATURE_MIG_DEVICE_STATE)
        if cvfio_DEVICE_FEATURE_MIG_DATA_SIZE != 0 { #expect(VFIODeviceUAPI.featureMigDataSize == cvfio_DEVICE_FEATURE_MIG_DATA_SIZE) }
        #expect(VFIODeviceUAPI.migrationFlags.first { $0.1 == "STOP_COPY" }?.0 == cvfio_MIGRATION_STOP_COPY)
        #expect(VFIODeviceUAPI.migrationFlags.first { $0.1 == "P2P" }?.0 == cvfio_MIGRATION_P2P)
        #expect(MigrationState.stop.rawValue == cvfio_DEVICE_STATE_STOP)
        #expect(MigrationState.running.rawValue == cvfio_DEVICE_STATE_RUNNING)
        #expect(MigrationState.stopCopy.rawValue == cvfio_DEVICE_STATE_STOP_COPY)
        #expect(MigrationState.resuming.rawValue == cvfio_DEVICE_STATE_RESUMING)
        #expect(MigrationState.runningP2P.rawValue == cvfio_DEVICE_STATE_RUNNING_P2P)
        #expect(VFIODeviceUAPI.deviceFlags.first { $0.1 == "PCI" }?.0 == cvfio_DEVICE_FLAGS_PCI)
        #expect(VFIODeviceUAPI.regionFlags.first { $0.1 == "MMAP" }?.0 == cvfio_REGION_INFO_FLAG_MMAP)
        #expect(VFIODeviceUAPI.irqFlags.first { $0.1 == "NORESIZE" }?.0 == cvfio_IRQ_INFO_NORESIZE)
        // The offsets DeviceIoctl reads at.
        #expect(cvfio_sizeof_device_feature == 8)
        #expect(cvfio_sizeof_mig_state == 8 && cvfio_offsetof_mig_state_data_fd == 4)
        #expect(cvfio_offsetof_region_info_size == 16 && cvfio_offsetof_region_info_offset == 24)
        #expect(cvfio_sizeof_irq_info == 16 && cvfio_sizeof_device_info >= 16)
    }

    static func bytes(_ words: [UInt32]) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: words.count * 4)
        for (i, w) in words.enumerated() { b.putLE32(w, at: i * 4) }
        return b
    }

    static func feature(_ flags: UInt32, _ payloadIn: [UInt32], out payloadOut: [UInt32]? = nil, result: CallResult = .ok(0)) -> RawIoctl {
        let argsz = UInt32(8 + payloadIn.count * 4)
        return RawIoctl(fd: 12, fdKind: .device, request: VFIODeviceUAPI.feature, argIn: bytes([argsz, flags] + payloadIn),
                        result: result, argOut: payloadOut.map { bytes([argsz, flags] + $0) })
    }

    @Test("DEVICE_FEATURE: the state asked and the data fd, the migration flags, the data size, a probe")
    func features() {
        let set = VFIODeviceUAPI.featureSet | VFIODeviceUAPI.featureMigDeviceState
        let stopCopy = DeviceIoctl(Self.feature(set, [3, 0xffff_ffff], out: [3, 14]))
        #expect(stopCopy == .setState(.stopCopy, rawState: 3, dataFD: 14))
        #expect(stopCopy?.description == "DEVICE_FEATURE SET MIG_DEVICE_STATE STOP_COPY data_fd=14")
        #expect(DeviceIoctl(Self.feature(set, [1, 0], out: [1, 0xffff_ffff]))?.description == "DEVICE_FEATURE SET MIG_DEVICE_STATE STOP")
        // A failed transition: nothing the kernel wrote is believed.
        #expect(DeviceIoctl(Self.feature(set, [6, 0], out: [6, 9], result: .error(22))) == .setState(.preCopy, rawState: 6, dataFD: nil))
        #expect(DeviceIoctl(Self.feature(set, [42, 0]))?.description == "DEVICE_FEATURE SET MIG_DEVICE_STATE state 42")
        let migration = VFIODeviceUAPI.featureGet | VFIODeviceUAPI.featureMigration
        #expect(DeviceIoctl(Self.feature(migration, [0, 0], out: [7, 0]))?.description == "DEVICE_FEATURE GET MIGRATION flags=STOP_COPY|P2P|PRE_COPY")
        let size = VFIODeviceUAPI.featureGet | VFIODeviceUAPI.featureMigDataSize
        #expect(DeviceIoctl(Self.feature(size, [0, 0], out: [4096, 1])) == .dataSize(4096 + (1 << 32)))
        let probe = VFIODeviceUAPI.featureProbe | VFIODeviceUAPI.featureGet | 6
        #expect(DeviceIoctl(Self.feature(probe, [], result: .error(25)))?.description == "DEVICE_FEATURE PROBE|GET DMA_LOGGING_START")
        // Too short to hold its flags: named, not decoded.
        #expect(DeviceIoctl(RawIoctl(fd: 12, fdKind: .device, request: VFIODeviceUAPI.feature, argIn: [16, 0, 0, 0])) == .other("DEVICE_FEATURE"))
        // The same number on a container is DIRTY_PAGES, not this.
        var onContainer = Self.feature(set, [3, 0])
        onContainer.fdKind = .container
        #expect(DeviceIoctl(onContainer) == nil)
    }

    @Test("GET_INFO, GET_REGION_INFO, GET_IRQ_INFO and the data fd's PRECOPY_INFO")
    func infos() {
        let info = RawIoctl(fd: 12, fdKind: .device, request: VFIODeviceUAPI.getInfo, argIn: Self.bytes([24, 0, 0, 0, 0, 0]),
                            result: .ok(0), argOut: Self.bytes([24, 2, 9, 5, 0, 0]))
        #expect(DeviceIoctl(info)?.description == "GET_INFO flags=PCI regions=9 irqs=5")
        let region = RawIoctl(fd: 12, fdKind: .device, request: VFIODeviceUAPI.getRegionInfo, argIn: Self.bytes([32, 0, 7, 0, 0, 0, 0, 0]),
                              result: .ok(0), argOut: Self.bytes([32, 3, 7, 0, 256, 0, 0, 0x7000]))
        #expect(DeviceIoctl(region) == .regionInfo(index: 7, flags: 3, size: 256, offset: 0x7000 << 32))
        let irq = RawIoctl(fd: 12, fdKind: .device, request: VFIODeviceUAPI.getIRQInfo, argIn: Self.bytes([16, 0, 3, 0]),
                           result: .error(22), argOut: Self.bytes([16, 0, 3, 0]))
        #expect(DeviceIoctl(irq)?.description == "GET_IRQ_INFO index=3 flags=? count=?")
        let precopy = RawIoctl(fd: 14, fdKind: .other, request: VFIODeviceUAPI.migGetPrecopyInfo, argIn: Self.bytes([24, 0, 0, 0, 0, 0]),
                               result: .ok(0), argOut: Self.bytes([24, 0, 312, 0, 0, 0]))
        #expect(DeviceIoctl(precopy) == .precopyInfo(initialBytes: 312, dirtyBytes: 0))
        #expect(DeviceIoctl(RawIoctl(fd: 12, fdKind: .device, request: VFIODeviceUAPI.reset, result: .ok(0))) == .other("RESET"))
        #expect(DeviceIoctl(RawIoctl(fd: 12, fdKind: .device, request: 0xc0203bf0)) == nil)
    }

    @Test("the text form names them in a comment, and cat | compile gives back the same bytes")
    func textRoundTrip() throws {
        let set = VFIODeviceUAPI.featureSet | VFIODeviceUAPI.featureMigDeviceState
        let events = [
            Event(seq: 0, time: 5, tid: 7, .rawIoctl(Self.feature(set, [3, 0xffff_ffff], out: [3, 14]))),
            Event(seq: 1, time: 6, tid: 7, .rawIoctl(RawIoctl(fd: 14, fdKind: .other, request: VFIODeviceUAPI.migGetPrecopyInfo,
                                                              argIn: Self.bytes([24, 0, 0, 0, 0, 0]), result: .error(22),
                                                              argOut: Self.bytes([24, 0, 0, 0, 0, 0])))),
        ]
        var p = TextPrinter()
        let lines = events.map { p.line(for: $0) }
        #expect(lines[0].hasSuffix("  # DEVICE_FEATURE SET MIG_DEVICE_STATE STOP_COPY data_fd=14"), "\(lines[0])")
        #expect(lines[1].hasSuffix("  # MIG_GET_PRECOPY_INFO initial_bytes=? dirty_bytes=?"), "\(lines[1])")
        let (_, back) = try TextParser.parse(lines.joined(separator: "\n"))
        #expect(back == events)
    }
}
