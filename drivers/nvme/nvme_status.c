/*
 * NVMe completion status decoded into words (NVM Express Base Specification
 * 2.0, "Status Code - Generic Command Status Values", "Command Specific
 * Status Values", "Media and Data Integrity Errors", "Path Related Status";
 * NVM Command Set and Zoned Namespace specs for the 80h+ ranges).
 */
#include "drivers/nvme/nvme_var.h"
#include "kernel/kprintf.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"

struct nvme_code { uint8_t sc; const char *name; };

static const struct nvme_code nvme_generic[] = {
	{ 0x00, "Successful Completion" },
	{ 0x01, "Invalid Command Opcode" },
	{ 0x02, "Invalid Field in Command" },
	{ 0x03, "Command ID Conflict" },
	{ 0x04, "Data Transfer Error" },
	{ 0x05, "Commands Aborted due to Power Loss Notification" },
	{ 0x06, "Internal Error" },
	{ 0x07, "Command Abort Requested" },
	{ 0x08, "Command Aborted due to SQ Deletion" },
	{ 0x09, "Command Aborted due to Failed Fused Command" },
	{ 0x0a, "Command Aborted due to Missing Fused Command" },
	{ 0x0b, "Invalid Namespace or Format" },
	{ 0x0c, "Command Sequence Error" },
	{ 0x0d, "Invalid SGL Segment Descriptor" },
	{ 0x0e, "Invalid Number of SGL Descriptors" },
	{ 0x0f, "Data SGL Length Invalid" },
	{ 0x10, "Metadata SGL Length Invalid" },
	{ 0x11, "SGL Descriptor Type Invalid" },
	{ 0x12, "Invalid Use of Controller Memory Buffer" },
	{ 0x13, "PRP Offset Invalid" },
	{ 0x14, "Atomic Write Unit Exceeded" },
	{ 0x15, "Operation Denied" },
	{ 0x16, "SGL Offset Invalid" },
	{ 0x18, "Host Identifier Inconsistent Format" },
	{ 0x19, "Keep Alive Timer Expired" },
	{ 0x1a, "Keep Alive Timeout Invalid" },
	{ 0x1b, "Command Aborted due to Preempt and Abort" },
	{ 0x1c, "Sanitize Failed" },
	{ 0x1d, "Sanitize In Progress" },
	{ 0x1e, "SGL Data Block Granularity Invalid" },
	{ 0x1f, "Command Not Supported for Queue in CMB" },
	{ 0x20, "Namespace is Write Protected" },
	{ 0x21, "Command Interrupted" },
	{ 0x22, "Transient Transport Error" },
	{ 0x23, "Command Prohibited by Command and Feature Lockdown" },
	{ 0x24, "Admin Command Media Not Ready" },
	/* NVM command set */
	{ 0x80, "LBA Out of Range" },
	{ 0x81, "Capacity Exceeded" },
	{ 0x82, "Namespace Not Ready" },
	{ 0x83, "Reservation Conflict" },
	{ 0x84, "Format In Progress" },
	{ 0x85, "Invalid Value Size" },
	{ 0x86, "Invalid Key Size" },
	{ 0x87, "KV Key Does Not Exist" },
	{ 0x88, "Unrecovered Error" },
	{ 0x89, "Key Exists" },
};

static const struct nvme_code nvme_cmd_specific[] = {
	{ 0x00, "Completion Queue Invalid" },
	{ 0x01, "Invalid Queue Identifier" },
	{ 0x02, "Invalid Queue Size" },
	{ 0x03, "Abort Command Limit Exceeded" },
	{ 0x05, "Asynchronous Event Request Limit Exceeded" },
	{ 0x06, "Invalid Firmware Slot" },
	{ 0x07, "Invalid Firmware Image" },
	{ 0x08, "Invalid Interrupt Vector" },
	{ 0x09, "Invalid Log Page" },
	{ 0x0a, "Invalid Format" },
	{ 0x0b, "Firmware Activation Requires Conventional Reset" },
	{ 0x0c, "Invalid Queue Deletion" },
	{ 0x0d, "Feature Identifier Not Saveable" },
	{ 0x0e, "Feature Not Changeable" },
	{ 0x0f, "Feature Not Namespace Specific" },
	{ 0x10, "Firmware Activation Requires NVM Subsystem Reset" },
	{ 0x11, "Firmware Activation Requires Controller Level Reset" },
	{ 0x12, "Firmware Activation Requires Maximum Time Violation" },
	{ 0x13, "Firmware Activation Prohibited" },
	{ 0x14, "Overlapping Range" },
	{ 0x15, "Namespace Insufficient Capacity" },
	{ 0x16, "Namespace Identifier Unavailable" },
	{ 0x18, "Namespace Already Attached" },
	{ 0x19, "Namespace Is Private" },
	{ 0x1a, "Namespace Not Attached" },
	{ 0x1b, "Thin Provisioning Not Supported" },
	{ 0x1c, "Controller List Invalid" },
	{ 0x1d, "Device Self-test In Progress" },
	{ 0x1e, "Boot Partition Write Prohibited" },
	{ 0x1f, "Invalid Controller Identifier" },
	{ 0x20, "Invalid Secondary Controller State" },
	{ 0x21, "Invalid Number of Controller Resources" },
	{ 0x22, "Invalid Resource Identifier" },
	{ 0x23, "Sanitize Prohibited While Persistent Memory Region is Enabled" },
	{ 0x24, "ANA Group Identifier Invalid" },
	{ 0x25, "ANA Attach Failed" },
	{ 0x26, "Insufficient Capacity" },
	{ 0x27, "Namespace Attachment Limit Exceeded" },
	{ 0x28, "Prohibition of Command Execution Not Supported" },
	{ 0x29, "I/O Command Set Not Supported" },
	{ 0x2a, "I/O Command Set Not Enabled" },
	{ 0x2b, "I/O Command Set Combination Rejected" },
	{ 0x2c, "Invalid I/O Command Set" },
	{ 0x2d, "Identifier Unavailable" },
	/* NVM command set */
	{ 0x80, "Conflicting Attributes" },
	{ 0x81, "Invalid Protection Information" },
	{ 0x82, "Attempted Write to Read Only Range" },
	{ 0x83, "Command Size Limit Exceeded" },
	/* Zoned namespaces */
	{ 0xb8, "Zone Boundary Error" },
	{ 0xb9, "Zone Is Full" },
	{ 0xba, "Zone Is Read Only" },
	{ 0xbb, "Zone Is Offline" },
	{ 0xbc, "Zone Invalid Write" },
	{ 0xbd, "Too Many Active Zones" },
	{ 0xbe, "Too Many Open Zones" },
	{ 0xbf, "Invalid Zone State Transition" },
};

static const struct nvme_code nvme_media[] = {
	{ 0x80, "Write Fault" },
	{ 0x81, "Unrecovered Read Error" },
	{ 0x82, "End-to-end Guard Check Error" },
	{ 0x83, "End-to-end Application Tag Check Error" },
	{ 0x84, "End-to-end Reference Tag Check Error" },
	{ 0x85, "Compare Failure" },
	{ 0x86, "Access Denied" },
	{ 0x87, "Deallocated or Unwritten Logical Block" },
	{ 0x88, "End-to-end Storage Tag Check Error" },
};

static const struct nvme_code nvme_path[] = {
	{ 0x00, "Internal Path Error" },
	{ 0x01, "Asymmetric Access Persistent Loss" },
	{ 0x02, "Asymmetric Access Inaccessible" },
	{ 0x03, "Asymmetric Access Transition" },
	{ 0x60, "Controller Pathing Error" },
	{ 0x70, "Host Pathing Error" },
	{ 0x71, "Command Aborted By Host" },
};

static const char *nvme_lookup(const struct nvme_code *t, unsigned n, unsigned sc)
{
	for (unsigned i = 0; i < n; i++)
		if (t[i].sc == sc)
			return t[i].name;
	return NULL;
}

const char *nvme_sct_name(unsigned sct)
{
	switch (sct) {
	case NVME_SCT_GENERIC: return "generic";
	case NVME_SCT_CMD: return "command specific";
	case NVME_SCT_MEDIA: return "media";
	case NVME_SCT_PATH: return "path";
	case NVME_SCT_VENDOR: return "vendor specific";
	default: return "reserved type";
	}
}

const char *nvme_status_name(unsigned sct, unsigned sc)
{
	const char *s = NULL;

	switch (sct) {
	case NVME_SCT_GENERIC: s = nvme_lookup(nvme_generic, ARRAY_SIZE(nvme_generic), sc); break;
	case NVME_SCT_CMD: s = nvme_lookup(nvme_cmd_specific, ARRAY_SIZE(nvme_cmd_specific), sc); break;
	case NVME_SCT_MEDIA: s = nvme_lookup(nvme_media, ARRAY_SIZE(nvme_media), sc); break;
	case NVME_SCT_PATH: s = nvme_lookup(nvme_path, ARRAY_SIZE(nvme_path), sc); break;
	case NVME_SCT_VENDOR: return "Vendor Specific Error";
	}
	return s ? s : "Unknown Status";
}

void nvme_status_decode(char *buf, unsigned len, uint16_t sf)
{
	unsigned sct = NVME_SF_SCT(sf), sc = NVME_SF_SC(sf);

	ksnprintf(buf, len, "%s (%s, status 0x%04x%s)", nvme_status_name(sct, sc), nvme_sct_name(sct),
		  NVME_SF_CODE(sf), NVME_SF_DNR(sf) ? ", do not retry" : "");
}

/* The errno the block layer reports; the words carry the detail. */
int nvme_status_errno(uint16_t sf)
{
	unsigned sct = NVME_SF_SCT(sf), sc = NVME_SF_SC(sf);

	if (sct == NVME_SCT_GENERIC) {
		switch (sc) {
		case NVME_SC_SUCCESS: return 0;
		case NVME_SC_INVALID_OPCODE: return -ENOTSUP;
		case NVME_SC_INVALID_FIELD: return -EINVAL;
		case NVME_SC_LBA_RANGE: return -ERANGE;
		case NVME_SC_CAP_EXCEEDED: return -ENOSPC;
		case NVME_SC_ABORT_REQ: return -ETIMEDOUT;   /* we abort only on timeout */
		}
	}
	return -EIO;
}
