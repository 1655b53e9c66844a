/* capstan: the command-line front door. Dispatches to one file per subcommand. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("capstan\n");
    return 0;
}
