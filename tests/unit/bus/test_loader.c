/* test_loader.c — gw_plugin_open: the broken plugins of tests/plugins are refused with
 * one exact line each; memory.so is found by path, by plugin_dir and by
 * $SIOGW_PLUGIN_PATH; "not found" lists every place searched.
 * Usage: test_loader memory=<so> bad_magic=<so> bad_abi=<so> small_table=<so>
 *                    no_symbol=<so> failing_create=<so> */
#include <libgen.h>
#include <limits.h>
#include <unistd.h>

#include "../test.h"
#include "bus/loader.h"
#include "siogw_build.h"
#include "util/err.h"

static const char *memory_so, *bad_magic_so, *bad_abi_so, *small_table_so, *no_symbol_so,
	*failing_create_so;
static char memory_dir[PATH_MAX], plugins_dir[PATH_MAX];

/* Open and expect refusal with exactly `want`. */
static void refused(const char *what, const char *dir, int want_rc, const char *want)
{
	char err[1024] = "";
	gw_plugin *p = (gw_plugin *)1;
	CHECK_EQ_INT(gw_plugin_open(what, dir, &p, err, sizeof err), want_rc);
	CHECK(p == NULL);
	CHECK_STR(err, want);
	CHECK(!strchr(err, '\n'));
}

TEST(refuse_bad_magic)
{
	char want[PATH_MAX + 128];
	snprintf(want, sizeof want, "plugin %s: bad magic 0x12345678, expected 0x53494f47", bad_magic_so);
	refused(bad_magic_so, NULL, -GW_EPLUGIN, want);
}

TEST(refuse_bad_abi)
{
	char want[PATH_MAX + 128];
	snprintf(want, sizeof want, "plugin %s: ABI major 2, gateway supports 1", bad_abi_so);
	refused(bad_abi_so, NULL, -GW_EPLUGIN, want);
}

TEST(refuse_small_table)
{
	char want[PATH_MAX + 128];
	snprintf(want, sizeof want, "plugin %s: ops table too small: %zu bytes, ABI 1 needs at least %zu",
		 small_table_so, offsetof(siogw_plugin, publish), (size_t)GW_PLUGIN_MIN_SIZE);
	refused(small_table_so, NULL, -GW_EPLUGIN, want);
	/* ABI 1.0's members are mandatory, 1.1's check is not */
	CHECK_EQ_INT(GW_PLUGIN_MIN_SIZE, offsetof(siogw_plugin, check));
}

TEST(refuse_no_symbol)
{
	char want[PATH_MAX + 128];
	snprintf(want, sizeof want, "plugin %s: no symbol siogw_plugin_v1", no_symbol_so);
	refused(no_symbol_so, NULL, -GW_EPLUGIN, want);
}

TEST(refuse_missing_file)
{
	refused("/nonexistent/x.so", NULL, -GW_EPLUGIN,
		"plugin /nonexistent/x.so: cannot open shared object file: No such file or directory");
}

TEST(refuse_not_elf)
{
	char path[] = "/tmp/siogw-notelf-XXXXXX.so";
	int fd = mkstemps(path, 3);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(write(fd, "not a shared object\n", 20) == 20);
	close(fd);
	char err[1024] = "";
	gw_plugin *p = NULL;
	CHECK_EQ_INT(gw_plugin_open(path, NULL, &p, err, sizeof err), -GW_EPLUGIN);
	char prefix[PATH_MAX + 16];
	snprintf(prefix, sizeof prefix, "plugin %s: ", path);
	CHECK(strncmp(err, prefix, strlen(prefix)) == 0);
	CHECK(strlen(err) > strlen(prefix));
	unlink(path);
}

TEST(refuse_bad_name)
{
	refused("a b", NULL, -GW_EINVAL, "plugin a b: invalid name (use [A-Za-z0-9_-] or a path to a .so)");
	refused("", NULL, -GW_EINVAL, "plugin: no name or path given");
}

/* The loader accepts it; create() fails and says why. */
TEST(failing_create)
{
	char err[256] = "";
	gw_plugin *p = NULL;
	CHECK_EQ_INT(gw_plugin_open(failing_create_so, NULL, &p, err, sizeof err), 0);
	if (!p)
		return;
	const siogw_plugin *d = gw_plugin_desc(p);
	CHECK_STR(d->name, "failing_create");
	siogw_host host = {.size = sizeof host, .abi_minor = SIOGW_ABI_MINOR};
	void *self = (void *)1;
	CHECK_EQ_INT(d->create(&host, NULL, 0, &self, err, sizeof err), -SIOGW_EIO);
	CHECK(self == NULL);
	CHECK_STR(err, "failing_create: cannot reach the bus at 127.0.0.1:1 (test plugin)");
	gw_plugin_close(p);
}

static void expect_memory(const char *what, const char *dir, const char *want_path)
{
	char err[1024] = "";
	gw_plugin *p = NULL;
	CHECK_EQ_INT(gw_plugin_open(what, dir, &p, err, sizeof err), 0);
	if (!p) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK_STR(err, "");
	CHECK_STR(gw_plugin_desc(p)->name, "memory");
	CHECK_STR(gw_plugin_path(p), want_path);
	gw_plugin_close(p);
}

TEST(memory_by_path)
{
	expect_memory(memory_so, NULL, memory_so);
	gw_plugin *p = NULL;
	char err[256];
	CHECK_EQ_INT(gw_plugin_open(memory_so, NULL, &p, err, sizeof err), 0);
	if (!p)
		return;
	const siogw_plugin *d = gw_plugin_desc(p);
	CHECK_EQ_INT(d->abi_major, SIOGW_ABI_MAJOR);
	CHECK(GW_PLUGIN_HAS(p, destroy));
	CHECK(GW_PLUGIN_HAS(p, stats));
	CHECK(GW_PLUGIN_HAS(p, check)); /* built against 1.1 */
	CHECK(d->check != NULL);
	CHECK(!gw_plugin_has(p, d->size)); /* a member a later minor would add */
	gw_plugin_close(p);
	gw_plugin_close(NULL);
}

TEST(memory_by_relative_path)
{
	/* "memory.so" (no '/') means the file in the cwd, not a library-path search */
	char cwd[PATH_MAX];
	CHECK(getcwd(cwd, sizeof cwd) != NULL);
	CHECK_EQ_INT(chdir(memory_dir), 0);
	expect_memory("memory.so", NULL, "./memory.so");
	CHECK_EQ_INT(chdir(cwd), 0);
}

TEST(memory_by_plugin_dir)
{
	char want[PATH_MAX + 32];
	snprintf(want, sizeof want, "%s/memory.so", memory_dir);
	expect_memory("memory", memory_dir, want);
	/* the build tree's plugins/ folder works too: <dir>/<name>/<name>.so */
	snprintf(want, sizeof want, "%s/memory/memory.so", plugins_dir);
	expect_memory("memory", plugins_dir, want);
}

TEST(memory_by_env)
{
	char env[PATH_MAX + 64], want[PATH_MAX + 32];
	snprintf(env, sizeof env, "/nonexistent-1::%s", memory_dir);
	setenv("SIOGW_PLUGIN_PATH", env, 1);
	snprintf(want, sizeof want, "%s/memory.so", memory_dir);
	expect_memory("memory", NULL, want);
	/* plugin_dir comes first */
	snprintf(want, sizeof want, "%s/memory/memory.so", plugins_dir);
	expect_memory("memory", plugins_dir, want);
	unsetenv("SIOGW_PLUGIN_PATH");
}

TEST(not_found_lists_places)
{
	setenv("SIOGW_PLUGIN_PATH", "/nope-b1:/nope-b2/", 1);
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	CHECK(n > 0);
	exe[n > 0 ? n : 0] = '\0';
	char want[8192];
	snprintf(want, sizeof want,
		 "plugin nosuch: not found (searched: /nope-a/nosuch.so, /nope-a/nosuch/nosuch.so, "
		 "/nope-b1/nosuch.so, /nope-b1/nosuch/nosuch.so, /nope-b2/nosuch.so, /nope-b2/nosuch/nosuch.so, "
		 "%s/../plugins/nosuch/nosuch.so, %s/nosuch.so)",
		 dirname(exe), SIOGW_PLUGIN_DIR);
	refused("nosuch", "/nope-a", -GW_EPLUGIN, want);
	unsetenv("SIOGW_PLUGIN_PATH");
}

/* A broken file found first is an error: the search does not fall through to a good one. */
TEST(broken_candidate_not_skipped)
{
	char dir[] = "/tmp/siogw-shadow-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char link[PATH_MAX + 32], want[PATH_MAX * 2];
	snprintf(link, sizeof link, "%s/memory.so", dir);
	CHECK_EQ_INT(symlink(bad_magic_so, link), 0);
	setenv("SIOGW_PLUGIN_PATH", memory_dir, 1);
	snprintf(want, sizeof want, "plugin %s: bad magic 0x12345678, expected 0x53494f47", link);
	refused("memory", dir, -GW_EPLUGIN, want);
	unsetenv("SIOGW_PLUGIN_PATH");
	unlink(link);
	rmdir(dir);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq = strchr(a, '=');
		if (!eq)
			continue;
		const char *v = eq + 1;
		size_t k = (size_t)(eq - a);
#define ARG(name)                                                   \
	if (k == strlen(#name) && strncmp(a, #name, k) == 0)        \
		name##_so = v;
		ARG(memory) ARG(bad_magic) ARG(bad_abi) ARG(small_table) ARG(no_symbol) ARG(failing_create)
#undef ARG
	}
	if (!memory_so || !bad_magic_so || !bad_abi_so || !small_table_so || !no_symbol_so ||
	    !failing_create_so) {
		fprintf(stderr, "usage: %s memory=<so> bad_magic=<so> bad_abi=<so> small_table=<so> "
				"no_symbol=<so> failing_create=<so>\n",
			argv[0]);
		return 2;
	}
	unsetenv("SIOGW_PLUGIN_PATH");
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s", memory_so);
	snprintf(memory_dir, sizeof memory_dir, "%s", dirname(tmp)); /* build/plugins/memory */
	snprintf(tmp, sizeof tmp, "%s", memory_dir);
	snprintf(plugins_dir, sizeof plugins_dir, "%s", dirname(tmp)); /* build/plugins */

	RUN(refuse_bad_magic);
	RUN(refuse_bad_abi);
	RUN(refuse_small_table);
	RUN(refuse_no_symbol);
	RUN(refuse_missing_file);
	RUN(refuse_not_elf);
	RUN(refuse_bad_name);
	RUN(failing_create);
	RUN(memory_by_path);
	RUN(memory_by_relative_path);
	RUN(memory_by_plugin_dir);
	RUN(memory_by_env);
	RUN(not_found_lists_places);
	RUN(broken_candidate_not_skipped);
	return TEST_END();
}
