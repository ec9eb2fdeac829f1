# The web view (tmemd's status page: src/tmemd/web.h).  Its test suite,
# tests/web, also links the JSON escaper it checks byte for byte and the
# daemon tests' helpers (HTTP GET, a tmemd with --metrics).
SUITE_OBJ_web := $(BUILD)/obj/src/tmemd/json_esc.o \
	$(BUILD)/obj/tests/daemon/test_daemon_util.o
