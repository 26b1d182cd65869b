"""Names of the translator counters, in spec/stats.md order (ID = index + 1).

Kept beside counters.pxd, which gives the same IDs to the Cython kernels; a test
checks that both agree."""

COUNTER_NAMES = (
    "JSTAT_RECEIVED6",
    "JSTAT_RECEIVED4",
    "JSTAT_SUCCESS",
    "JSTAT_BIB_ENTRIES",
    "JSTAT_SESSIONS",
    "JSTAT_ENOMEM",
    "JSTAT_XLATOR_DISABLED",
    "JSTAT_POOL6_UNSET",
    "JSTAT_SKB_SHARED",
    "JSTAT_L3HDR_OFFSET",
    "JSTAT_SKB_TRUNCATED",
    "JSTAT_HDR6",
    "JSTAT_HDR4",
    "JSTAT_UNKNOWN_L4_PROTO",
    "JSTAT_UNKNOWN_ICMP6_TYPE",
    "JSTAT_UNKNOWN_ICMP4_TYPE",
    "JSTAT_DOUBLE_ICMP6_ERROR",
    "JSTAT_DOUBLE_ICMP4_ERROR",
    "JSTAT_UNKNOWN_PROTO_INNER",
    "JSTAT_HAIRPIN_LOOP",
    "JSTAT_POOL6_MISMATCH",
    "JSTAT_POOL4_MISMATCH",
    "JSTAT_ICMP6_FILTER",
    "JSTAT_UNTRANSLATABLE_DST6",
    "JSTAT_UNTRANSLATABLE_DST4",
    "JSTAT_6056_F",
    "JSTAT_MASK_DOMAIN_NOT_FOUND",
    "JSTAT_BIB6_NOT_FOUND",
    "JSTAT_BIB4_NOT_FOUND",
    "JSTAT_SESSION_NOT_FOUND",
    "JSTAT_ADF",
    "JSTAT_V4_SYN",
    "JSTAT_SYN6_EXPECTED",
    "JSTAT_SYN4_EXPECTED",
    "JSTAT_TYPE1PKT",
    "JSTAT_TYPE2PKT",
    "JSTAT_SO_EXISTS",
    "JSTAT_SO_FULL",
    "JSTAT64_SRC",
    "JSTAT64_DST",
    "JSTAT64_PSKB_COPY",
    "JSTAT64_6791_ENOENT",
    "JSTAT64_ICMP_CSUM",
    "JSTAT64_UNTRANSLATABLE_PARAM_PROB_PTR",
    "JSTAT64_TTL",
    "JSTAT64_FRAGMENTED_ICMP",
    "JSTAT64_2XFRAG",
    "JSTAT64_FRAG_THEN_EXT",
    "JSTAT64_SEGMENTS_LEFT",
    "JSTAT46_SRC",
    "JSTAT46_DST",
    "JSTAT46_PSKB_COPY",
    "JSTAT46_6791_ENOENT",
    "JSTAT46_ICMP_CSUM",
    "JSTAT46_UNTRANSLATABLE_PARAM_PROBLEM_PTR",
    "JSTAT46_TTL",
    "JSTAT46_FRAGMENTED_ICMP",
    "JSTAT46_SRC_ROUTE",
    "JSTAT46_FRAGMENTED_ZERO_CSUM",
    "JSTAT46_BAD_MTU",
    "JSTAT_FAILED_ROUTES",
    "JSTAT_PKT_TOO_BIG",
    "JSTAT_DST_OUTPUT",
    "JSTAT_ICMP6ERR_SUCCESS",
    "JSTAT_ICMP6ERR_FAILURE",
    "JSTAT_ICMP4ERR_SUCCESS",
    "JSTAT_ICMP4ERR_FAILURE",
    "JSTAT_ICMPEXT_BIG",
    "JSTAT_UNKNOWN",
)

COUNTER_IDS = {name: i for i, name in enumerate(COUNTER_NAMES, 1)}


# The dataplane's own counters (slots 70-84 of the same rows; counters.pxd JDP_*).
# They are ours, not Jool's: `jool stats display` keeps to COUNTER_NAMES.
DATAPLANE_COUNTER_NAMES = (
    "JOOL_DP_RX_FRAMES",
    "JOOL_DP_RX_TRUNCATED",
    "JOOL_DP_TX_CACHED",
    "JOOL_DP_TX_KERNEL",
    "JOOL_DP_TX_ERRORS",
    "JOOL_DP_NH_MISSES",
    "JOOL_DP_NH_LEARNED",
    "JOOL_DP_NH_REFUSED",
    "JOOL_DP_NO_SPACE",
    "JOOL_DP_NFQ_RECEIVED",
    "JOOL_DP_NFQ_ACCEPTED",
    "JOOL_DP_RX_DROPPED",
    "JOOL_DP_HANDED_BACK",
    "JOOL_DP_GSO_SENT",
    "JOOL_DP_COALESCED",
)
DATAPLANE_FIRST_SLOT = 70

# Session synchronization (jool/sync/), the control process's row; ours too.
SYNC_COUNTER_NAMES = (
    "JOOL_SS_QUEUED",
    "JOOL_SS_SENT",
    "JOOL_SS_SEND_ERRORS",
    "JOOL_SS_DISCARDED",
    "JOOL_SS_RECEIVED",
    "JOOL_SS_INSTALLED",
    "JOOL_SS_UPDATED",
    "JOOL_SS_REJECTED",
    "JOOL_SS_DROPPED",
    "JOOL_SS_LOST_DATAGRAMS",
    # Hardening (issue 8): whole datagrams dropped, by reason. The first three
    # only happen with a shared key (jool/sync/signing.py).
    "JOOL_SS_UNSIGNED",
    "JOOL_SS_FORGED",
    "JOOL_SS_REPLAYED",
    "JOOL_SS_MALFORMED",
)
SYNC_FIRST_SLOT = 86

# BIB and session logging (logging-bib, logging-session: jool/control/sessionlog.py),
# the control process's row; ours too.
LOG_COUNTER_NAMES = (
    "JOOL_LOG_RECORDS",
    "JOOL_LOG_LOST",
)
LOG_FIRST_SLOT = SYNC_FIRST_SLOT + len(SYNC_COUNTER_NAMES)
