/* The main of the layer-check-* programs (gateway/meson.build): each links one layer's
 * library whole with the layers below it; that it links at all is the check. */
int main(void) { return 0; }
